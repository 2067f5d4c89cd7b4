"""Laaffic emulator: `POST /v3/number/record/queryPage`, strictly signed, paged, with fault knobs.

Checks run in the order of specs/laaffic.md §8.3; the first failing one answers. Records come from
`_laaffic_data` (deterministic per UTC+8 day); each query's records are sorted and rendered once
and cached, so a page costs a slice, not a pass over the data. Shared faults (HTTP 5xx, 429,
latency) live in `self.faults`; Laaffic's own knobs in `self.knobs` and the `*_next` methods.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from cdrfetch.providers.laaffic.emulator import data as synth
from cdrfetch.providers.laaffic.emulator.knobs import Knobs
from cdrfetch.providers.laaffic.emulator.wire import JSON_TYPE, failure, is_int, parse_iso
from cdrfetch.sandbox import hostile
from cdrfetch.sandbox.data import rng
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route
from cdrfetch.windows import Window

API_KEY, API_SECRET = "bDqJFiq9", "7bz1lzh9"  # the docs' example credentials (vector L-1)


@dataclass
class Query:
    """One window's records in server order, pre-rendered."""

    calls: list[synth.LaafficCall]
    rendered: list[bytes]


class LaafficEmulator(Emulator):
    """The Laaffic number-record API on loopback."""

    name = "laaffic"
    malformed_where = "records[3]"
    unsupported_faults = frozenset({"truncate_downloads"})  # records come inline in JSON pages
    hostile_data = frozenset({"hostile_json"})  # the pages (there is no archive: no hostile_archive)

    def _fault(self, name: str, value: Any) -> None:
        if name == "malformed":
            self.knobs.malformed = 3 if value else None
        elif name == "empty" and value:
            self.knobs.records_min = self.knobs.records_max = 0
            self.knobs.heavy_dates = ()

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        api_key: str = API_KEY,
        api_secret: str = API_SECRET,
        **knobs: Any,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        self.api_key, self.api_secret = api_key, api_secret
        formats = {name: knobs.pop(name) for name in synth.Formats().__dict__ if name in knobs}
        self.knobs = Knobs(**knobs, formats=synth.Formats(**formats))
        self.inserted: list[synth.LaafficCall] = []
        self.inflight = self.peak_inflight = 0
        self._overrides: list[list[Any]] = []  # [remaining, kind, status]
        self._answered: deque[float] = deque()
        self._days: dict[tuple[Any, ...], list[synth.LaafficCall]] = {}
        self._queries: dict[tuple[Any, ...], Query] = {}
        self._data_lock = threading.Lock()

    @classmethod
    def knob_defaults(cls) -> dict[str, Any]:
        """The seed, the credentials, every field of `Knobs` and of its record `Formats`."""
        knobs = dict(vars(Knobs()))
        formats = vars(knobs.pop("formats"))
        return {**super().knob_defaults(), **knobs, **formats}

    # --- the Emulator interface -------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The record query, with and without the /v3 prefix."""
        return [Route("POST", re.compile(r"(?:/v3)?/number/record/queryPage"), self._query_page)]

    def profile(self, base_url: str) -> dict[str, Any]:
        """Sandbox credentials and a quick retry backoff."""
        return {"base_url": f"{base_url}/v3", "api_key": self.api_key, "api_secret": self.api_secret, "backoff": 0.05}

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        """Every record starting in `window`, computed from the generator (not the page path)."""
        days = {d for d in window.local_days(synth.PLATFORM_TZ) if d < self._today()}
        calls = [c for day in sorted(days) for c in self._day(day)] + list(self.inserted)
        inside = sorted((c for c in calls if window.contains(c.start)), key=lambda c: c.key)
        return [ExpectedCall(c.caller, c.called, c.start, c.duration) for c in inside]

    def handle(self, request: Request) -> Reply:
        """Count requests in flight (latency included) around the shared handling."""
        with self._lock:
            self.inflight += 1
            self.peak_inflight = max(self.peak_inflight, self.inflight)
        try:
            return super().handle(request)
        finally:
            with self._lock:
                self.inflight -= 1

    # --- one-shot fault knobs -----------------------------------------------------------------

    def override_next(self, count: int, status: str) -> None:
        """The next `count` valid requests get `status` (e.g. "-18", "-15", "-99")."""
        self._overrides.append([count, "status", status])

    def html_next(self, count: int) -> None:
        """The next `count` valid requests get HTTP 200 with an HTML page."""
        self._overrides.append([count, "html", ""])

    def truncate_next(self, count: int) -> None:
        """The next `count` successful answers are cut in half."""
        self._overrides.append([count, "truncate", ""])

    def add_call(self, start: datetime) -> synth.LaafficCall:
        """Insert one record starting at `start` (what a live account does while we read it)."""
        r = rng(self.seed, self.api_key, "inserted", len(self.inserted))
        call = synth.make_call(r, synth.number_pool(self.seed, self.api_key), start, 50_000 + len(self.inserted))
        with self._data_lock:
            self.inserted.append(call)
        return call

    def preload(self, window: Window) -> None:
        """Build and render the query for `window` now (benchmarks time the pages, not this)."""
        self._query(window.start, window.end)

    # --- the route ---------------------------------------------------------------------------

    def _query_page(self, request: Request, match: re.Match[str]) -> Reply:
        checks = (self._credentials, self._account, self._rate, self._body, self._injected)
        for check in checks:
            answer = check(request)
            if answer is not None:
                return answer
        return self._answer(request)

    def _credentials(self, request: Request) -> Reply | None:
        sign, stamp, key = (request.header(h) or "" for h in ("Sign", "Timestamp", "Api-Key"))
        if not (sign and stamp and key and stamp.isdigit()) or key != self.api_key:
            return failure("-1")
        knobs = self.knobs
        if knobs.ip_allow is not None and request.client_ip not in knobs.ip_allow:
            return failure("-31")
        if request.client_ip in knobs.ip_block:
            return failure("-2")
        if abs(self.now().timestamp() - int(stamp)) > knobs.skew_seconds:
            return failure("-16")
        expected = hashlib.md5(f"{self.api_key}{self.api_secret}{stamp}".encode()).hexdigest()
        return None if sign.lower() == expected else failure("-1")

    def _account(self, request: Request) -> Reply | None:
        knobs = self.knobs
        for flag, status in ((knobs.key_disabled, "-30"), (knobs.workspace_disabled, "-29")):
            if flag:
                return failure(status)
        return failure("-32") if knobs.no_permission else None

    def _rate(self, request: Request) -> Reply | None:
        if self.knobs.qps is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._answered and now - self._answered[0] >= 1.0:
                self._answered.popleft()
            if len(self._answered) >= self.knobs.qps:
                return failure("-15")
            self._answered.append(now)
        return None

    def _body(self, request: Request) -> Reply | None:
        try:
            body = request.json()
            current, size, params = body["current"], body["size"], body["params"]
            start, end = parse_iso(params["strTime"]), parse_iso(params["endTime"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return failure("-22")
        if not (is_int(current) and current >= 1 and is_int(size) and 1 <= size <= 100 and end > start):
            return failure("-22")
        too_long = end - start > timedelta(days=self.knobs.max_span_days)
        if too_long or start < self.clock() - timedelta(days=self.knobs.retention_days):
            return failure("-25")
        return None

    def _injected(self, request: Request) -> Reply | None:
        with self._lock:
            due = next((entry for entry in self._overrides if entry[0] > 0 and entry[1] != "truncate"), None)
            if due is not None:
                due[0] -= 1
        if due is None:
            return None
        if due[1] == "html":
            return Reply(200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
        return failure(due[2])

    def _answer(self, request: Request) -> Reply:
        body = request.json()
        current, size = body["current"], body["size"]
        start, end = parse_iso(body["params"]["strTime"]), parse_iso(body["params"]["endTime"])
        if self.knobs.slow_seconds and (not self.knobs.slow_pages or current in self.knobs.slow_pages):
            time.sleep(self.knobs.slow_seconds)
        query = self._query(start, end)
        total = len(query.calls) + self.knobs.total_offset
        data: dict[str, Any] = {"total": total, "size": size, "current": current, "pages": math.ceil(total / size)}
        if self.knobs.search_count:
            data["searchCount"] = True
        data.update(self.knobs.declare)
        served = self.knobs.serve_size or size
        records = b",".join(query.rendered[(current - 1) * served : current * served])
        head = json.dumps({"status": "0", "reason": "success"}, separators=(",", ":"))[:-1]
        payload = f'{head},"data":{json.dumps(data, separators=(",", ":"))[:-1]},"records":['.encode()
        body = payload + records + b"]}}"
        if self.hostile_json:  # at a record's caller: a text that goes on to the output
            body = hostile.json_answer(self.hostile_json, json.loads(body), "caller")
        reply = Reply(200, body, {"Content-Type": JSON_TYPE}, truncate=self._take_truncate())
        if current == self.knobs.insert_after_page:
            self._insert(start, end)
        return reply

    def _take_truncate(self) -> bool:
        with self._lock:
            due = next((entry for entry in self._overrides if entry[0] > 0 and entry[1] == "truncate"), None)
            if due is not None:
                due[0] -= 1
        return due is not None

    def _insert(self, start: datetime, end: datetime) -> None:
        """Spread `insert_during_paging` new records evenly over the window (past days only)."""
        knobs = self.knobs
        with self._lock:
            if knobs.insert_repeat <= 0 or knobs.insert_during_paging <= 0:
                return
            knobs.insert_repeat -= 1
        stop = min(end, datetime.combine(self._today(), datetime.min.time(), tzinfo=synth.PLATFORM_TZ))
        count = knobs.insert_during_paging
        for k in range(count):
            offset = (stop - start) * (k + 1) / (count + 1)
            self.add_call((start + offset).replace(microsecond=0).astimezone(timezone.utc))

    # --- data ----------------------------------------------------------------------------------

    def _today(self) -> date:
        """Records exist only for UTC+8 days before the emulator's today."""
        return self.clock().astimezone(synth.PLATFORM_TZ).date()

    def _day(self, day: date) -> list[synth.LaafficCall]:
        knobs = self.knobs
        count = knobs.heavy_count if day in knobs.heavy_dates else (knobs.records_min, knobs.records_max)
        key = (day, count)
        with self._data_lock:
            if key not in self._days:
                self._days[key] = synth.day_calls(self.seed, self.api_key, day, count)
            return self._days[key]

    def _query(self, start: datetime, end: datetime) -> Query:
        knobs, today = self.knobs, self._today()
        key: tuple[Any, ...] = (start, end, today, len(self.inserted), knobs.records_min, knobs.records_max)
        key += (knobs.heavy_dates, knobs.heavy_count, knobs.end_inclusive, knobs.malformed, knobs.formats.key())
        with self._data_lock:
            cached = self._queries.get(key)
        if cached is not None:
            return cached
        query = self._build(start, end, today)
        with self._data_lock:
            if len(self._queries) > 16:
                self._queries.clear()
            self._queries[key] = query
        return query

    def _build(self, start: datetime, end: datetime, today: date) -> Query:
        window = Window(start, end)
        days = [d for d in window.local_days(synth.PLATFORM_TZ) if d < today]
        if self.knobs.end_inclusive:
            days += [d for d in Window(end, end + timedelta(seconds=1)).local_days(synth.PLATFORM_TZ) if d < today]
        with self._data_lock:
            inserted = list(self.inserted)
        pool = [c for day in sorted(set(days)) for c in self._day(day)] + inserted
        inclusive = self.knobs.end_inclusive
        calls = sorted((c for c in pool if start <= c.start and (c.start < end or (inclusive and c.start == end))),
                       key=lambda c: c.key)  # fmt: skip
        app_id = hashlib.sha1(self.api_key.encode()).hexdigest()[:16]
        formats, bad = self.knobs.formats, self.knobs.malformed
        return Query(calls, [synth.render(c, formats, app_id, broken=i == bad) for i, c in enumerate(calls)])


EMULATOR = LaafficEmulator
