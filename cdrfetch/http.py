"""HTTP: the configured session and one classified attempt.

`send` makes exactly one request and turns transport failures into CdrfetchErrors that say
whether another attempt may help. Retrying is the caller's job (client.Client.retry), so that a
provider can add its own retryable body codes to the same loop and budget.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from cdrfetch import __version__
from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, TemporaryError, UnavailableError
from cdrfetch.redact import REDACTOR

log = logging.getLogger("cdrfetch.http")
USER_AGENT = f"cdrfetch/{__version__}"
TLS_HINT = "set `ca_bundle` to the server's CA certificate (PEM), or fix the server certificate"


def make_session(*, ca_bundle: str | None, insecure: bool) -> requests.Session:
    """A session with TLS verification on (or a CA bundle), env proxies and our User-Agent."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    if insecure:
        log.warning("TLS verification is OFF (insecure: true): anyone on the path can read and alter this traffic")
        session.verify = False
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    elif ca_bundle:
        session.verify = ca_bundle
    return session


def retry_after(response: requests.Response) -> float | None:
    """Seconds requested by a Retry-After header (delta or HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        from datetime import datetime, timezone

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


def send(
    session: requests.Session, method: str, url: str, *, what: str, timeout: float, **kwargs: Any
) -> requests.Response:
    """One attempt. Raises retryable errors for 5xx, 429 and transport failures; returns the rest."""
    log.debug("%s: %s %s", what, method, REDACTOR(url))
    # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override the session's `verify` (so
    # `ca_bundle` and `insecure` would be ignored wherever those are set); per request they win.
    kwargs.setdefault("verify", session.verify)
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.SSLError as exc:
        raise ConfigError(f"{what}: TLS verification of {_host(url)} failed: {_reason(exc)}", TLS_HINT) from None
    except requests.exceptions.Timeout:
        raise TemporaryError(
            f"{what}: no answer from {_host(url)} within {timeout:g}s", "raise `timeout`", retryable=True
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise TemporaryError(
            f"{what}: cannot connect to {_host(url)}: {_reason(exc)}",
            "check `base_url` and the network",
            retryable=True,
        ) from None
    except requests.exceptions.ChunkedEncodingError:
        # the body was cut short (Content-Length not reached): a transport failure worth retrying
        raise TemporaryError(
            f"{what}: the answer from {_host(url)} was cut short", "run again later", retryable=True
        ) from None
    log.debug("%s: HTTP %s (%s bytes)", what, response.status_code, response.headers.get("Content-Length", "?"))
    error: CdrfetchError | None = None
    if response.status_code == 429:
        error = TemporaryError(
            f"{what}: throttled (HTTP 429)", "run again later", retryable=True, retry_after=retry_after(response)
        )
    elif response.status_code >= 500:
        error = UnavailableError(
            f"{what}: HTTP {response.status_code} from {_host(url)}",
            "the provider is failing; run again later",
            retryable=True,
            retry_after=retry_after(response),
        )
    if error is not None:
        error.http_status = response.status_code  # lets a provider tell throttling from failures
        raise error
    return response


def fail_on_status(response: requests.Response, what: str, hints: Mapping[int, str] | None = None) -> None:
    """Raise the right error for a non-2xx status (after `send` handled 5xx and 429)."""
    status = response.status_code
    if status < 400:
        return
    hint = (hints or {}).get(status)
    error: CdrfetchError
    if status in (401, 403):
        error = AuthError(
            f"{what}: HTTP {status} (credentials or permission rejected)", hint or "check the credentials"
        )
    elif status == 404:
        error = ConfigError(f"{what}: HTTP 404 (no such resource)", hint or "check `base_url`")
    else:
        error = UnavailableError(f"{what}: HTTP {status}", hint or "see the provider's documentation")
    error.http_status = status
    raise error


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def _reason(exc: Exception) -> str:
    """The innermost readable cause of a requests exception, without URLs (they may carry tokens)."""
    text = str(exc.args[0] if exc.args else exc)
    for marker in ("certificate verify failed", "Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return REDACTOR(type(exc).__name__)
