"""Acme Voice: HMAC-signed, cursor-paginated JSON call records (see the package README for the protocol)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.auth import AuthBase

from cdrfetch import http, records
from cdrfetch.errors import AuthError, DataError
from cdrfetch.providers.base import Provider, Setting
from cdrfetch.windows import Window

MAX_PAGES = 10_000  # a cursor that never ends is a server bug, not a reason to loop for ever


def signature(secret: str, path_and_query: str, timestamp: str) -> str:
    """Lower-case hex HMAC-SHA256 of `GET\\n<path>?<query>\\n<timestamp>`, keyed with the secret."""
    message = f"GET\n{path_and_query}\n{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class AcmeAuth(AuthBase):
    """Signs every request afresh (the core re-sends, and so re-signs, on each retry)."""

    def __init__(self, api_key: str, api_secret: str, clock: Callable[[], datetime]) -> None:
        self.api_key, self._secret, self.clock = api_key, api_secret, clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        stamp = str(int(self.clock().timestamp()))
        request.headers["X-Api-Key"] = self.api_key
        request.headers["X-Timestamp"] = stamp
        request.headers["X-Signature"] = signature(self._secret, f"{parts.path}?{parts.query}", stamp)
        return request

    def __repr__(self) -> str:  # the secret never reaches a traceback
        return f"AcmeAuth({self.api_key!r})"


class Acme(Provider):
    """Acme Voice call records."""

    name = "acme"
    title = "Acme Voice (example plugin)"
    account_setting = "api_key"
    max_window = timedelta(days=7)
    settings = (
        Setting("base_url", "API root", default="https://api.acme.example"),
        Setting("api_key", "API key id"),
        Setting("api_secret", "API signing secret", secret=True),
    )

    def fetch(self, chunk: Window) -> Iterator[records.Batch]:
        """Every page of the chunk, normalized."""
        rows = (self._row(call, page, i) for page, calls in self._pages(chunk) for i, call in enumerate(calls))
        yield from records.batches("calls", records.CALLS, rows)

    def check(self) -> str:
        """One signed request for an empty minute proves key, secret and clock."""
        now = self.client.clock().replace(second=0, microsecond=0)
        next(self._pages(Window(now - timedelta(minutes=1), now)))
        return f"signature accepted for api_key {self.config['api_key']}"

    def _pages(self, chunk: Window) -> Iterator[tuple[int, list[Any]]]:
        cursor: str | None = None
        for page in range(1, MAX_PAGES + 1):
            query = {"from": _iso(chunk.start), "to": _iso(chunk.end)} | ({"cursor": cursor} if cursor else {})
            body = self._get(f"{str(self.config['base_url']).rstrip('/')}/v1/calls?{urlencode(query)}", page)
            yield page, body["calls"]
            cursor = body.get("next_cursor")
            if not cursor:
                return
        raise DataError(f"acme: more than {MAX_PAGES} pages for {chunk.label}", "report this to Acme")

    def _get(self, url: str, page: int) -> dict[str, Any]:
        what = f"acme calls page {page}"
        auth = AcmeAuth(str(self.config["api_key"]), str(self.config["api_secret"]), self.client.clock)

        def attempt() -> dict[str, Any]:
            response = self.client.send("GET", url, what=what, auth=auth)
            if response.status_code == 401:
                raise AuthError(f"{what}: signature rejected (HTTP 401)", "check api_key, api_secret and the clock")
            http.fail_on_status(response, what)
            return _page_body(response.content, what)

        return self.client.retry(attempt, what=what)

    def _row(self, call: Any, page: int, index: int) -> dict[str, Any]:
        where = f"acme page {page} calls[{index}]"
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            raise DataError(f"{where}: a call without an id", "report this to Acme")
        known = {"id", "from", "to", "started_at", "duration", "status", "cost", "currency"}
        return {
            "provider": self.name,
            "account": self.account,
            "record_id": call["id"],
            "call_id": call["id"],
            "start_time": _time(call.get("started_at"), where),
            "end_time": None,
            "duration_s": call.get("duration") if isinstance(call.get("duration"), int) else None,
            "billed_duration_s": None,
            "caller": call.get("from"),
            "callee": call.get("to"),
            "direction": "unknown",
            "call_type": None,
            "status": call.get("status"),
            "cost": _cost(call.get("cost"), where),
            "currency": call.get("currency"),
            "country": None,
            "recording_url": None,
            "extra": records.extra_json({k: v for k, v in call.items() if k not in known}),
        }


def _page_body(content: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        raise DataError(f"{what}: not JSON", "a proxy may be answering instead of Acme; check base_url") from None
    if not isinstance(body, dict) or not isinstance(body.get("calls"), list):
        raise DataError(f"{what}: no 'calls' list in the answer", "report this to Acme")
    return body


def _iso(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(value: Any, where: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        raise DataError(f"{where}: started_at {value!r} is not an ISO-8601 time", "report this to Acme") from None


def _cost(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.000001"))
    except InvalidOperation:
        raise DataError(f"{where}: cost {value!r} is not a number", "report this to Acme") from None


PROVIDER = Acme
