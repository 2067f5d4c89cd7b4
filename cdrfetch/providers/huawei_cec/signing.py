"""Huawei C2 "auth-v2" request signing (CC-FS, CC-CMS, CC-iSales).

There is no body hash: the whole body, percent-encoded, is part of the canonical request, so the
signer reads the exact bytes of the prepared request. The signing key is the hex TEXT of the first
HMAC, not its raw bytes (Huawei's SignInfo does it that way).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from requests.auth import AuthBase

DEFAULT_SIGNED = "content-length;content-type;host"
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def enc(text: str) -> str:
    """Percent-encode UTF-8 bytes, keeping only A-Z a-z 0-9 - . _ ~ (space -> %20, uppercase hex)."""
    return quote(text, safe="-._~")


def hmac_hex(key: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 with the key and message taken as UTF-8 text."""
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def prefix(ak: str, ts: str, signed: str) -> str:
    """`auth-v2/<AK>/<ts>/<signedHeaders>`: the first HMAC's message and the Authorization start."""
    return f"auth-v2/{ak}/{ts}/{signed}"


def canonical_request(
    method: str, path: str, headers: Mapping[str, str], body: str, query: Mapping[str, str] | None = None
) -> str:
    """The canonical request of spec §3.3 (headers: lowercase name -> value as sent)."""
    signed = ";".join(sorted(name.lower() for name in headers))
    lines = [method, path]
    if query:
        lines.append("&".join(sorted(f"{enc(k)}={enc(v)}" for k, v in query.items())))
    lines.append(signed)
    # whole "name:value" strings are sorted here, names alone above: they differ on prefix names
    lines.append("\n".join(sorted(f"{enc(k.lower())}:{enc(v)}" for k, v in headers.items())))
    return "\n".join(lines) + "\n" + (enc(body) if body else "")


def authorization(
    ak: str,
    sk: str,
    ts: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: str = "",
    query: Mapping[str, str] | None = None,
) -> str:
    """The full `Authorization` value for one request."""
    head = prefix(ak, ts, ";".join(sorted(name.lower() for name in headers)))
    signing_key = hmac_hex(sk, head)
    return head + "/" + hmac_hex(signing_key, canonical_request(method, path, headers, body, query))


def timestamp(moment: datetime) -> str:
    """`ts`: UTC, whole seconds, `yyyy-MM-ddTHH:mm:ssZ`."""
    return moment.astimezone(timezone.utc).strftime(TS_FORMAT)


def host_header(url: str) -> str:
    """`Host` as it must be signed and sent: host:port, port left out only for 443, IPv6 in brackets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host if port == 443 else f"{host}:{port}"


class AuthV2(AuthBase):
    """Signs every prepared request afresh (new `ts` from `clock`), reading what will be sent."""

    def __init__(
        self, ak: str, sk: str, *, clock: Callable[[], datetime], signed_headers: str = DEFAULT_SIGNED
    ) -> None:
        self.ak = ak
        self._sk = sk
        self.clock = clock
        self.names = sorted({name.strip().lower() for name in signed_headers.split(";") if name.strip()} | {"host"})

    def __repr__(self) -> str:  # the secret never reaches a repr in a traceback or log
        return f"AuthV2(ak={self.ak!r}, signed_headers={';'.join(self.names)!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set Host explicitly (urllib3 would drop default ports), then sign the exact bytes."""
        url = request.url or ""
        if "Host" not in request.headers:
            request.headers["Host"] = host_header(url)
        body = request.body or b""
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        request.headers["Content-Length"] = str(len(raw))
        headers = {name: str(request.headers.get(name, "")) for name in self.names}
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        request.headers["Authorization"] = authorization(
            self.ak,
            self._sk,
            timestamp(self.clock()),
            request.method or "POST",
            parts.path,
            headers,
            raw.decode("utf-8"),
            query or None,
        )
        return request
