"""Emulator of Huawei CC-FS queryBillData / downloadBillFile (spec §8), with strict auth-v2.

Every request is authenticated first: the signature is recomputed from the received method,
path, listed headers and raw body; 401 on mismatch, and 403 for an address that failed too often
(the IP lock). Jobs become ready after `ready_after` seconds of the emulator's clock and at least
`ready_after_polls` "not ready" answers. Every knob is a plain attribute (constructor kwargs too).
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from cdrfetch.providers.huawei_cec.emulator import auth, export, replies
from cdrfetch.providers.huawei_cec.emulator.knobs import Knobs
from cdrfetch.providers.huawei_cec.emulator.replies import OCTET
from cdrfetch.sandbox import hostile
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route
from cdrfetch.windows import Window, zone

QUERY = "/CCFS/resource/ccfs/queryBillData"
DOWNLOAD = "/CCFS/resource/ccfs/downloadBillFile"
TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
FILE = re.compile(r"^(\d{8})_([0-9a-f]{32})\.zip$")


@dataclass
class Job:
    """One export: who asked, for which local window, and how often it answered "not ready"."""

    ak: str
    begin: datetime
    end: datetime
    data_type: str
    created: datetime
    file_name: str
    not_ready: int = 0
    blob: bytes | None = None


class HuaweiCecEmulator(Knobs, Emulator):
    """CC-FS on loopback."""

    name = "huawei-cec"
    malformed_where = "_call.csv: line 2"  # the first data row loses its call_id
    hostile_data = frozenset({"hostile_archive", "hostile_json"})  # the export zip; queryBillData's responseId

    def __init__(self, *, seed: int = 0, clock: Any = None, **knobs: Any) -> None:
        super().__init__(seed=seed, clock=clock)
        self.credentials = dict(Knobs.credentials)
        for key, value in knobs.items():
            if not hasattr(Knobs, key):
                raise TypeError(f"unknown huawei-cec emulator knob {key!r}")
            setattr(self, key, value)
        self.jobs: dict[str, Job] = {}
        self.counter = 0
        self.failures: dict[str, list[datetime]] = {}
        self.locked_until: dict[str, datetime] = {}
        self.damaged = 0
        self.state = threading.Lock()

    @classmethod
    def knob_defaults(cls) -> dict[str, Any]:
        """The seed and every attribute of `Knobs`."""
        return {**super().knob_defaults(), **{k: v for k, v in vars(Knobs).items() if not k.startswith("_")}}

    @property
    def ak(self) -> str:
        """The first configured AK (the sandbox account)."""
        return next(iter(self.credentials))

    def _fault(self, name: str, value: Any) -> None:
        if name in ("malformed", "empty"):
            setattr(self, name, value)
        elif name == "truncate_downloads":
            self.truncate_zip, self.damage_limit = ("lying", value) if value else (None, None)

    def routes(self) -> list[Route]:
        """The two CC-FS routes; other methods 405, other paths 404 (Spring-shaped)."""
        known = [Route("POST", re.compile(re.escape(p)), self._guard(h)) for p, h in self._handlers().items()]
        wrong = [Route(m, re.compile(f"{QUERY}|{DOWNLOAD}"), self._guard(self._405)) for m in ("GET", "PUT", "DELETE")]
        missing = [Route(m, re.compile(".*"), self._guard(self._404)) for m in ("GET", "POST", "PUT", "DELETE")]
        return known + wrong + missing

    def _handlers(self) -> dict[str, Any]:
        return {QUERY: self._query, DOWNLOAD: self._download}

    def server_tls(self) -> ssl.SSLContext | None:
        """HTTPS with `tls_cert` (tests make a self-signed one to exercise `ca_bundle` and `insecure`)."""
        if self.tls_cert is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.tls_cert)
        return context

    def profile(self, base_url: str) -> dict[str, Any]:
        """Sandbox credentials and short waits (the demo still shows a few polls)."""
        ak = self.ak
        return {
            "base_url": base_url, "ak": ak, "sk": self.credentials[ak], "tz": self.data_tz,
            "backoff": 0.05, "poll_interval": 0.1, "poll_timeout": 60.0, "flow_backoff": 0.05,
        }  # fmt: skip

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        """One entry per `_call` row a correct client returns for `window`."""
        return export.expected(self.seed, self.ak, window.start, window.end, zone(self.data_tz), **self.sizes)

    # -- auth ---------------------------------------------------------------------------------

    def _guard(self, handler: Any) -> Any:
        def guarded(request: Request, match: re.Match[str]) -> Reply:
            refused = self._authenticate(request)
            return refused if refused is not None else handler(request, match)

        return guarded

    def _authenticate(self, request: Request) -> Reply | None:
        """§8.2: 403 while the address is locked; 401 (counted towards the lock) on any mismatch."""
        now = self.now()
        with self.state:
            if self.lock_now or self.locked_until.get(request.client_ip, now) > now:
                return replies.spring(403, request.path, now)
            if self.reject_auth or not self.verify(request, now):
                recent = [
                    t for t in self.failures.get(request.client_ip, []) if (now - t).total_seconds() < self.lock_window
                ]
                self.failures[request.client_ip] = [*recent, now]
                if len(recent) + 1 >= self.lock_after:
                    self.locked_until[request.client_ip] = now + timedelta(seconds=self.lock_duration)
                return replies.spring(401, request.path, now)
        return None

    def verify(self, request: Request, now: datetime) -> bool:
        """Recompute the auth-v2 signature from exactly what was received."""
        return auth.verify(request, self.credentials, now, self.max_skew)

    # -- queryBillData ------------------------------------------------------------------------

    def _query(self, request: Request, match: re.Match[str]) -> Reply:
        msg, error = replies.envelope(request)
        if error is None:
            error = self._check_query(msg)
        if error is None and (code := self._injected("throttle_query", "0300009")):
            error = code
        if error is not None:
            return self._error(*error)
        begin, end = (datetime.strptime(msg[k], "%Y-%m-%d %H:%M:%S") for k in ("beginTime", "endTime"))
        response_id = self._create(request, begin, end, msg["dataType"])
        payload = {"resultCode": "0", "resultDesc": "success", "resultData": {"responseId": response_id},
                   "response": {"version": "2.0", "resultCode": "0", "resultMsg": "success"}}  # fmt: skip
        return hostile.json_reply(self.hostile_json, payload, "responseId")

    def _check_query(self, msg: dict[str, Any]) -> tuple[str, str] | None:
        for key in ("beginTime", "endTime", "dataType", "callBackURL"):
            problem = replies.field(msg, key, 64)
            if problem:
                return problem
        for key in ("accountId", "agentId", "callId", "callerNo", "calleeNo"):
            if key in msg and (problem := replies.field(msg, key, 64)):
                return problem
        if not all(TIME.match(msg[k]) for k in ("beginTime", "endTime")) or msg["dataType"] not in (
            "call", "record", "call_record"
        ):  # fmt: skip
            return "0300004", "beginTime" if not TIME.match(msg["beginTime"]) else "endTime"
        span = datetime.fromisoformat(msg["endTime"]) - datetime.fromisoformat(msg["beginTime"])
        if span <= timedelta(0) or span > timedelta(days=3):
            return "0300004", "endTime"
        return None

    def _create(self, request: Request, begin: datetime, end: datetime, data_type: str) -> str:
        ak = (request.header("Authorization") or "").split("/")[1]
        with self.state:
            self.counter += 1
            digest = hashlib.sha256(f"{self.seed}|{ak}|{begin}|{end}|{self.counter}".encode()).hexdigest()[:32]
            created = self.now()
            local = created.astimezone(zone(self.file_date_tz or self.data_tz))
            day = local.date() + timedelta(days=self.file_date_offset_days)
            self.jobs[f"{day:%Y%m%d}_{digest}.zip"] = Job(ak, begin, end, data_type, created, f"{day:%Y%m%d}_{digest}")
        return "-".join((digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:]))

    # -- downloadBillFile ---------------------------------------------------------------------

    def _download(self, request: Request, match: re.Match[str]) -> Reply:
        msg, error = replies.envelope(request)
        if error is None:
            error = replies.field(msg, "billFileName", 49)
        if error is None and (code := self._injected("throttle_download", "0300008")):
            error = code
        if error is not None:
            return self._error(*error)
        name = msg["billFileName"]
        found = FILE.match(name)
        if not found:
            return self._error("0300004", "billFileName")
        try:
            datetime.strptime(found[1], "%Y%m%d")
        except ValueError:
            return self._error("0300010", "billFileName")
        ak = (request.header("Authorization") or "").split("/")[1]
        job = self.jobs.get(name)
        if job is None or job.ak != ak or not self._ready(job):
            return self._error("0300011", "")
        return self._serve(job)

    def _ready(self, job: Job) -> bool:
        with self.state:
            due = self.now() >= job.created + timedelta(seconds=self.ready_after)
            if self.never_ready or not due or job.not_ready < self.ready_after_polls:
                job.not_ready += 1
                return False
        return True

    def _serve(self, job: Job) -> Reply:
        rows = self._rows(job)
        if self.empty or not any(r for _, r in rows):
            return self._error("0300012", "")
        if job.blob is None:
            entries, kind = self._entries(job, rows), self.hostile_archive
            job.blob = hostile.archive(kind, entries) if kind else export.build_zip(entries)
        blob, damage = job.blob, self.damage_limit is None or self.damaged < self.damage_limit
        if damage and (self.corrupt_zip or self.truncate_zip):
            self.damaged += 1
            if self.corrupt_zip:
                blob = export.corrupt(blob)
            if self.truncate_zip == "short":
                blob = blob[: len(blob) // 2]
        reply = Reply(200, blob, {"Content-Type": OCTET})
        return replace(reply, truncate=damage and self.truncate_zip == "lying")

    @property
    def sizes(self) -> dict[str, int]:
        """How many calls a day the synthetic data has."""
        return {"rows_min": self.rows_min, "rows_max": self.rows_max}

    def _rows(self, job: Job) -> list[tuple[str, list[list[str]]]]:
        tz = zone(self.data_tz)
        start, end = (moment.replace(tzinfo=tz).astimezone(timezone.utc) for moment in (job.begin, job.end))
        found = export.rows_between(self.seed, job.ak, start, end, tz, **self.sizes)
        wanted = {"call": ("call",), "record": ("record",), "call_record": ("call", "record")}[job.data_type]
        makers = {"call": export.call_rows, "record": export.record_rows}
        return [(kind, makers[kind](found, job.ak, tz)) for kind in wanted]

    def _entries(self, job: Job, rows: list[tuple[str, list[list[str]]]]) -> list[tuple[str, bytes]]:
        style = export.Style(self.header, self.bom, self.gbk, self.extra_columns, self.short_rows, self.malformed)
        stamp = (
            f"{job.created:%Y%m%d%H%M%S}{job.created.microsecond // 1000:03d}{int(job.file_name[9:12], 16) % 1000:03d}"
        )
        entries = []
        for kind, kind_rows in rows:
            header = export.HEADER_CALL if kind == "call" else export.HEADER_RECORD
            row_style = style if kind == "call" else replace(style, extra_columns=0, short_rows=False, malformed=False)
            for member, part in export.members(stamp, kind, kind_rows, self.part_rows):
                entries.append((member, export.render(part, header, row_style)))
        return entries

    # -- envelopes ----------------------------------------------------------------------------

    def _injected(self, knob: str, code: str) -> tuple[str, str] | None:
        """A pending throttle or a one-shot `result_code`."""
        with self.state:
            if self.result_code:
                injected, self.result_code = self.result_code, None
                return injected, self.result_param
            if getattr(self, knob) > 0:
                setattr(self, knob, getattr(self, knob) - 1)
                return code, ""
        return None

    def _error(self, code: str, param: str) -> Reply:
        return replies.result(code, param, octet=self.error_as_octet)

    def _404(self, request: Request, match: re.Match[str]) -> Reply:
        return replies.spring(404, request.path, self.now(), "Not Found")

    def _405(self, request: Request, match: re.Match[str]) -> Reply:
        return replies.spring(405, request.path, self.now(), "Method Not Allowed")


EMULATOR = HuaweiCecEmulator
