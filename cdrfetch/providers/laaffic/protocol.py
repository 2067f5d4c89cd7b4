"""Laaffic protocol pieces: the signer, the query body, chunk alignment, status codes, the page gate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone, tzinfo

import requests

from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, DataError, TemporaryError, UnavailableError
from cdrfetch.windows import Window

PAGE_SIZE = 100
CONTENT_TYPE = "application/json;charset=UTF-8"
BASE_URL_HINT = "check `base_url`: this endpoint lives under /v3 (https://api.laaffic.com/v3) on Laaffic"
IP_HINT = "add this host's public IP address to the API allow-list in the Laaffic console"
SKEW_HINT = (
    "the system clock is off by more than ~30 minutes (Laaffic rejects stale timestamps): "
    "synchronise it with NTP and run again"
)
# cdrfetch never asks for more than 31 days (max_window_days is capped there), so -25 means the
# chunk reaches back beyond the records Laaffic still keeps
RANGE_HINT = "Laaffic keeps call records for about two months only: start the window later (--from)"
AUTH_HINTS = {
    "-1": "check `api_key` and `api_secret` (the API secret is in the Laaffic console)",
    "-2": IP_HINT,
    "-13": "the account is locked: contact Laaffic support",
    "-16": SKEW_HINT,
    "-29": "the workspace is disabled: enable it in the Laaffic console",
    "-30": "the API key is disabled: enable it or create a new one in the Laaffic console",
    "-31": IP_HINT,
    "-32": "give this API key access to the number application in the Laaffic console",
}
HTTP_HINTS = {404: BASE_URL_HINT}


def sign(api_key: str, api_secret: str, timestamp: str) -> str:
    """Lower-case hex MD5 of key + secret + timestamp (no separators)."""
    return hashlib.md5(f"{api_key}{api_secret}{timestamp}".encode()).hexdigest()


class LaafficAuth(requests.auth.AuthBase):
    """Adds Api-Key, Timestamp (Unix seconds from the injected clock) and Sign to every request."""

    def __init__(self, api_key: str, api_secret: str, clock: Callable[[], datetime]) -> None:
        self.api_key = api_key
        self._secret = api_secret
        self.clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        timestamp = str(int(self.clock().timestamp()))
        request.headers["Api-Key"] = self.api_key
        request.headers["Timestamp"] = timestamp
        request.headers["Sign"] = sign(self.api_key, self._secret, timestamp)
        return request

    def __repr__(self) -> str:
        return f"LaafficAuth(api_key={self.api_key!r})"


def iso(instant: datetime, tz: tzinfo, *, round_up: bool = False) -> str:
    """`2024-01-01T00:00:00+08:00`: whole seconds (an end rounds up, so no record is cut off)."""
    whole = instant.replace(microsecond=0)
    if round_up and whole != instant:
        whole += timedelta(seconds=1)
    return whole.astimezone(tz).isoformat(timespec="seconds")


def query_body(chunk: Window, tz: tzinfo, page: int) -> bytes:
    """The compact JSON body for one page of one chunk (keys in the documented order)."""
    params = {"strTime": iso(chunk.start, tz), "endTime": iso(chunk.end, tz, round_up=True)}
    body = {"current": page, "size": PAGE_SIZE, "params": params}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def local_chunks(window: Window, tz: tzinfo, days: int) -> list[Window]:
    """Half-open chunks of at most `days` days with inner boundaries on midnight in `tz`.

    Boundaries are every `days` local days from the first day's midnight; a chunk never exceeds
    `days` x 24 hours of elapsed time either (a DST day can make local days longer).
    """
    span = timedelta(days=days)
    day = window.start.astimezone(tz).date()
    cursor, chunks = window.start.astimezone(timezone.utc), []  # UTC: `+ span` is then elapsed time
    while cursor < window.end:
        boundary = datetime.combine(day + span, datetime.min.time(), tzinfo=tz)
        stop = min(boundary, cursor + span, window.end).astimezone(timezone.utc)
        chunks.append(replace(window, start=cursor, end=stop, relative=None, name=None))
        if stop >= boundary:
            day += span
        cursor = stop
    return chunks


class Throttled(TemporaryError):
    """Laaffic said `-15` (query too frequently): retried after a shared pause."""


def status_error(status: str, reason: str, what: str, request: str) -> CdrfetchError:
    """The error for a non-zero `status`, classed as the spec's table decides."""
    said = f"{what}: Laaffic status {status} ({reason or 'no reason given'})"
    if status in AUTH_HINTS:
        return AuthError(said, AUTH_HINTS[status])
    if status == "-15":
        return Throttled(said, "Laaffic is rate limiting this key: lower `concurrency` or run later", retryable=True)
    if status == "-18":
        return UnavailableError(said, "Laaffic reports a system error: run again later", retryable=True)
    if status in ("-22", "-11"):
        return DataError(f"{said} for {request}", "Laaffic rejected the query; report this message")
    if status == "-25":
        return ConfigError(said, RANGE_HINT)
    return UnavailableError(said, "an undocumented Laaffic status: run again later, or report it")


def is_throttle(error: CdrfetchError) -> bool:
    """True for the answers that ask every worker to slow down (-15, HTTP 429)."""
    return isinstance(error, Throttled) or error.http_status == 429
