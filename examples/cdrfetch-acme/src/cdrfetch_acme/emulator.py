"""Acme Voice on loopback: verifies every signature strictly and serves deterministic calls."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from cdrfetch.sandbox import data
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route
from cdrfetch.windows import Window

KEY, SECRET = "acme-sandbox-key", "acme-sandbox-secret"
PAGE_SIZE = 25
MAX_SKEW = 300


class AcmeEmulator(Emulator):
    """GET /v1/calls with HMAC auth and cursor paging, and the shared fault knobs."""

    name = "acme"
    malformed_where = "page 1 calls[0]"
    unsupported_faults = frozenset({"truncate_downloads"})  # calls come inline in JSON pages

    def __init__(self, **base: Any) -> None:
        super().__init__(**base)
        self.malformed = self.empty = False

    def _fault(self, name: str, value: Any) -> None:
        setattr(self, name, value)  # `malformed` and `empty` are plain switches here

    def routes(self) -> list[Route]:
        return [Route("GET", re.compile(r"/v1/calls"), self._calls)]

    def profile(self, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "api_key": KEY, "api_secret": SECRET, "backoff": 0.01}

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        calls = self._between(window.start, window.end)
        return [ExpectedCall(c.caller, c.callee, c.start, c.duration_s) for c in calls]

    def _between(self, start: datetime, end: datetime) -> list[data.SynthCall]:
        return [] if self.empty else data.calls_between(self.seed, KEY, start, end, timezone.utc)

    def _calls(self, request: Request, match: re.Match[str]) -> Reply:
        refusal = self._refusal(request)
        if refusal:
            return Reply.json({"error": refusal}, 401)
        try:
            start, end = (datetime.fromisoformat(str(request.param(k)).replace("Z", "+00:00")) for k in ("from", "to"))
        except ValueError:
            return Reply.json({"error": "from and to must be ISO-8601"}, 400)
        offset = int(request.param("cursor") or 0)
        calls = self._between(start, end)
        page = [self._render(call) for call in calls[offset : offset + PAGE_SIZE]]
        if self.malformed and offset == 0 and page:
            page[0]["started_at"] = "yesterday-ish"
        more = offset + PAGE_SIZE < len(calls)
        return Reply.json({"calls": page, "next_cursor": str(offset + PAGE_SIZE) if more else None})

    def _refusal(self, request: Request) -> str | None:
        stamp = request.header("X-Timestamp") or ""
        now = self.now()
        if request.header("X-Api-Key") != KEY or not stamp.isdigit():
            return "unknown key"
        if abs(now.timestamp() - int(stamp)) > MAX_SKEW:
            return "stale timestamp"
        parts = urlsplit(request.target)
        message = f"GET\n{parts.path}?{parts.query}\n{stamp}".encode()
        wanted = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(wanted, request.header("X-Signature") or "") else "bad signature"

    @staticmethod
    def _render(call: data.SynthCall) -> dict[str, Any]:
        return {
            "id": call.call_id,
            "from": call.caller,
            "to": call.callee,
            "started_at": call.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": call.duration_s,
            "status": call.status,
            "cost": str(call.cost),
            "currency": "USD",
            "region": call.country,
        }


EMULATOR = AcmeEmulator
