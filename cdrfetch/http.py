"""HTTP: the configured session, one classified attempt, and the network boundary.

`send` makes one request (following same-origin redirects itself) and turns transport failures
into CdrfetchErrors that say whether another attempt may help. Retrying is the caller's job
(client.Client.retry), so that a provider can add its own retryable body codes to the same loop.

The boundary: only absolute http(s) URLs are requested; a redirect to another origin (scheme, host,
port: https -> http included) is refused, so credentials never leave the provider's origin; an
answer body is read in small pieces against a wall-clock deadline and a size limit, so a server
that trickles or never stops cannot hold the run (and its cron lock) for ever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from cdrfetch import __version__
from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, DataError, TemporaryError, UnavailableError
from cdrfetch.redact import REDACTOR

log = logging.getLogger("cdrfetch.http")
USER_AGENT = f"cdrfetch/{__version__}"
TLS_HINT = "set `ca_bundle` to the server's CA certificate (PEM), or fix the server certificate"
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
READ_BYTES = 1 << 16  # one socket read at most: the deadline is checked between reads


@dataclass(frozen=True)
class Limits:
    """How long one answer may take to arrive in full, and how large it may be (None: no limit)."""

    deadline: float  # seconds from the request to the last byte
    max_bytes: int | None
    size_setting: str = "max_answer_mb"  # named in the hint when the limit is hit
    deadline_setting: str = "deadline"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL: what credentials are bound to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves the machine."""
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def in_the_clear(url: str) -> bool:
    """Plain http to a host that is not loopback: credentials and records would cross the network readable."""
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not is_loopback(parts.hostname or "")


def check_url(url: str, what: str) -> None:
    """Only absolute http(s) URLs are ever requested, whatever a provider hands out."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
        url.encode("utf-8")  # a lone surrogate (a JSON "\ud800") has no bytes to send: UnicodeEncodeError
    except ValueError:
        raise DataError(
            f"{what}: malformed URL {REDACTOR(url)[:200]!r}", "report this answer to the provider"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        shown = f"{parts.scheme}:" if parts.scheme else "a URL without scheme and host"
        raise DataError(f"{what}: refusing to fetch {shown} ({REDACTOR(url)[:200]!r})", "only http(s) URLs are fetched")


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
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    limits: Limits,
    monotonic: Callable[[], float] = time.monotonic,
    **kwargs: Any,
) -> requests.Response:
    """One attempt, redirects within the origin followed. Raises retryable errors for 5xx, 429 and
    transport failures; returns the rest. Without `stream=True` the body is read here, within `limits`."""
    check_url(url, what)
    stream = kwargs.pop("stream", False)
    follow = kwargs.pop("allow_redirects", True)  # False: a redirect is returned as it came
    deadline = monotonic() + limits.deadline
    for _ in range(MAX_REDIRECTS + 1):
        began = time.perf_counter()
        response = _attempt(session, method, url, what=what, timeout=timeout, **kwargs)
        if response.status_code not in REDIRECTS or not follow:
            break
        exchanged(what, method, url, response, response.headers.get("Content-Length"), began)
        target = _redirect_target(response, url, what)
        response.close()
        if response.status_code in (301, 302, 303) and method != "GET":  # what every client does
            method = "GET"
            kwargs.pop("data", None)
        url = target
    else:
        raise UnavailableError(
            f"{what}: more than {MAX_REDIRECTS} redirects", "the provider is misconfigured; report it"
        )
    if not stream:
        read_body(response, what, limits, deadline, monotonic)
    exchanged(what, method, url, response, len(response.content) if not stream else None, began)
    return response


def exchanged(what: str, method: str, url: str, response: requests.Response, size: object, began: float) -> None:
    """The debug line of one HTTP exchange (`-vv`): method, redacted URL, status, bytes, elapsed ms."""
    if log.isEnabledFor(logging.DEBUG):
        shown, status, elapsed = REDACTOR(url), response.status_code, round((time.perf_counter() - began) * 1000)
        size = response.headers.get("Content-Length", "?") if size is None else size
        fields = {"method": method, "url": shown, "status": status, "bytes": size, "elapsed_ms": elapsed}
        log.debug(
            "%s: %s %s -> %s, %s bytes, %d ms", what, method, shown, status, size, elapsed, extra={"fields": fields}
        )


def read_body(
    response: requests.Response, what: str, limits: Limits, deadline: float, monotonic: Callable[[], float]
) -> None:
    """Read the (decoded) body into `response.content`, refusing a trickle past the deadline or an oversize body."""
    pieces: list[bytes] = []
    size = 0
    try:
        while piece := response.raw.read1(READ_BYTES, decode_content=True):
            size += len(piece)
            check_limits(what, limits, size, deadline, monotonic)
            pieces.append(piece)
    except CdrfetchError:
        response.close()
        raise
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        response.close()
        raise UnavailableError(
            f"{what}: the answer was cut short ({type(exc).__name__})", "run again later", retryable=True
        ) from None
    response._content = b"".join(pieces)  # what requests itself does once it has read a body
    response._content_consumed = True  # type: ignore[attr-defined]


def check_limits(what: str, limits: Limits, size: int, deadline: float, monotonic: Callable[[], float]) -> None:
    """Raise once a body being read is over its size limit or past its deadline."""
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise DataError(
            f"{what}: larger than {limits.max_bytes} bytes", f"raise `{limits.size_setting}` if the data is real"
        )
    if monotonic() > deadline:
        raise UnavailableError(
            f"{what}: not complete within {limits.deadline:g}s (the server sends too slowly)",
            f"raise `{limits.deadline_setting}`, or run again later",
            retryable=True,
        )


def _attempt(
    session: requests.Session, method: str, url: str, *, what: str, timeout: float, **kwargs: Any
) -> requests.Response:
    began = time.perf_counter()
    # requests lets $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE override the session's `verify` (so
    # `ca_bundle` and `insecure` would be ignored wherever those are set); per request they win.
    kwargs.setdefault("verify", session.verify)
    try:
        response = session.request(method, url, timeout=timeout, allow_redirects=False, stream=True, **kwargs)
    except requests.exceptions.SSLError as exc:
        raise ConfigError(f"{what}: TLS verification of {_host(url)} failed: {_reason(exc)}", TLS_HINT) from None
    except requests.exceptions.Timeout:
        raise UnavailableError(
            f"{what}: no answer from {_host(url)} within {timeout:g}s", "raise `timeout`", retryable=True
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise UnavailableError(
            f"{what}: cannot connect to {_host(url)}: {_reason(exc)}",
            "check `base_url` and the network",
            retryable=True,
        ) from None
    except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema, ValueError):
        # InvalidURL is a ValueError, and so is what requests raises for a malformed Location header
        raise DataError(
            f"{what}: a malformed URL in the request or in the answer of {_host(url)}", "report it to the provider"
        ) from None
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
        exchanged(what, method, url, response, None, began)
        response.close()
        error.http_status = response.status_code  # lets a provider tell throttling from failures
        raise error
    return response


def _redirect_target(response: requests.Response, url: str, what: str) -> str:
    """The redirect's absolute target, when it stays within the origin: credentials never go elsewhere."""
    location = response.headers.get("Location", "")
    try:
        target = urljoin(url, location)
    except ValueError:
        raise DataError(f"{what}: redirect to a malformed URL", "report this answer to the provider") from None
    check_url(target, f"{what} (redirect)")
    if not location or origin(target) != origin(url):
        raise ConfigError(
            f"{what}: HTTP {response.status_code} redirect from {_host(url)} to {_origin_text(target)}: refused",
            "credentials are only sent to `base_url`'s origin; if the API moved, point `base_url` at the new address",
        )
    return target


def _origin_text(url: str) -> str:
    scheme, host, port = origin(url) if url else ("", "", 0)
    return f"{scheme}://{host}:{port}" if host else "nowhere"


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
    return urlsplit(url).netloc or url


def _reason(exc: Exception) -> str:
    """The innermost readable cause of a requests exception, without URLs (they may carry tokens)."""
    text = str(exc.args[0] if exc.args else exc)
    for marker in ("certificate verify failed", "Connection refused", "Name or service not known", "timed out"):
        if marker in text:
            return marker
    return REDACTOR(type(exc).__name__)
