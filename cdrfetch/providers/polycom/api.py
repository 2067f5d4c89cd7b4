"""The DMA's REST resource: Basic-auth requests with the vendor media types, and zip downloads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdrfetch.errors import ConfigError
from cdrfetch.providers.polycom import status as st

if TYPE_CHECKING:
    import requests
    from requests.auth import AuthBase

    from cdrfetch.client import Client

TLS_HINT = (
    "DMAs usually have a self-signed certificate: set `ca_bundle` to the DMA's CA certificate (PEM); "
    "`insecure: true` only as a last resort"
)


class Dma:
    """One DMA (or RPRM): where it is, how to authenticate, and the client that carries the requests."""

    def __init__(self, client: Client, auth: AuthBase, base_url: str) -> None:
        self.client, self.auth, self.base_url = client, auth, base_url

    def negotiated(self, method: str, url: str, what: str, headers: dict[str, str]) -> requests.Response:
        """A request with the vendor media types; once more with `Accept: */*` if they are refused."""
        response = self.send(method, url, what, headers={"Accept": st.STATUS_TYPES, **headers})
        if response.status_code in (406, 415):
            self.client.log.debug("%s: HTTP %d for the vendor media types; asking for */*", what, response.status_code)
            response = self.send(method, url, what, headers={"Accept": "*/*", **headers})
        return response

    def send(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        """One request with Basic auth; a TLS failure gets the DMA-specific hint."""
        try:
            return self.client.send(method, url, what=what, auth=self.auth, **kwargs)
        except ConfigError as error:
            raise _tls(error) from None

    def download_into(self, directory: Path, url: str, what: str, kwargs: dict[str, Any]) -> Path:
        """The zip at `url`, saved in `directory` (transport failures retried); its ETag goes to the notes."""
        headers: dict[str, str] = {}

        def keep_etag(response: requests.Response, *args: Any, **more: Any) -> None:
            headers["etag"] = response.headers.get("ETag", "")

        hints = {401: "check `username` and `password`", 403: st.ROLE_HINT, 404: st.LEGACY_HINT}
        try:
            path = self.client.download(
                url,
                what=what,
                suffix=".zip",
                hints=hints,
                into=directory,
                auth=self.auth,
                headers={"Accept": st.ZIP_TYPES},
                hooks={"response": keep_etag},
                **kwargs,
            )
        except ConfigError as error:
            raise _tls(error) from None
        for name, value in st.etag_notes(headers.get("etag")).items():
            self.client.note(name, value)
        return path


def _tls(error: ConfigError) -> ConfigError:
    """The core's TLS failure with the DMA-specific hint (self-signed certificates are the norm)."""
    if "TLS verification" in error.message:
        error.hint = TLS_HINT
    return error
