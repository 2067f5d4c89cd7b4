"""The Youlianyun emulator (spec §8): billList with strict signing checks, and the file server.

Protocol knobs are constructor keywords (also plain attributes, so a test can flip one mid-run);
the shared HTTP faults (5xx, 429, latency) come from `self.faults`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from cdrfetch.providers.youlianyun.emulator import files
from cdrfetch.sandbox import hostile
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route
from cdrfetch.windows import Window

SID = "1784fd62ae354a1eca54f8b34e5a9baf"
TOKEN = "0123456789abcdef0123456789abcdef"
APP_ID = "950a97bce77b885b747536a1e3887465"
VERSION = "2014-06-30"
UTC8 = timezone(timedelta(hours=8))
BILL_ROUTE = re.compile(r"(?:/(?P<version>[^/]+))?/Accounts/(?P<sid>[^/]*)/billList(?P<suffix>\.json|\.xml)?")
CONTENT_TYPES = {"plain": "text/plain; charset=utf-8", "zip": "application/zip", "gzip": "application/gzip"}
_NAME_OK = re.compile(r"[A-Za-z0-9_]+")
_SID_OK = re.compile(r"[A-Za-z0-9]+")


class Answer(Exception):
    """A check failed: the reply is this respCode."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Issued:
    """A download link handed out by billList."""

    body: bytes
    token: str
    container: str
    issued_at: float = field(default_factory=time.monotonic)


class YoulianyunEmulator(Emulator):
    """billList + /fileserver/file, deterministic per (seed, sid, appId, date)."""

    name = "youlianyun"
    malformed_where = "line 4"  # with a header line and a blank second line, data row 2 is line 4
    hostile_data = frozenset({"hostile_archive", "hostile_json"})  # the bill zip; billList's downUrl

    def __init__(self, *, seed: int = 0, clock: Any = None, **knobs: Any) -> None:
        super().__init__(seed=seed, clock=clock)
        self.accounts: dict[str, str] = {SID: TOKEN}  # sid -> auth token
        self.apps: dict[str, str] = {APP_ID: SID}  # appId -> owning sid
        self.accept_body, self.date_formats = "both", "dash"
        self.success_code, self.envelope, self.bill_shape = "200", "flat", "flat"
        self.expiry_minutes, self.retention_days = 50, None
        self.no_data_dates: set[str] = set()
        self.empty = False  # every date has no data (the shared `empty` fault)
        self.account_state: str | None = None  # 101108 / 101109 / 101110
        self.app_state: str | None = None  # 102103 / 102115 / 102117 / 102118 / 102119
        self.ip_allow: list[str] = []
        self.resp_error: list[Any] = []  # [code, remaining]
        self.truncate_download = 0  # the next N downloads send half their bytes
        self.bad_token = self.corrupt_archive = self.empty_file = False
        self.url_ttl_seconds: float | None = None
        self.rows_min, self.rows_max = 5, 40
        self.bill_parts = 1  # with bill_shape "list": the day's rows spread over this many files
        self.malformed_row: int | None = None  # data row (0-based) served with an unparseable startTime
        self.fmt = files.FileFormat()
        self.issued: dict[str, Issued] = {}
        self.configure(**knobs)

    def _fault(self, name: str, value: Any) -> None:
        own = {"malformed": ("malformed_row", 2 if value else None), "truncate_downloads": ("truncate_download", value)}
        setattr(self, *own.get(name, (name, value)))  # `empty` is a switch of its own

    @classmethod
    def knob_defaults(cls) -> dict[str, Any]:
        """The seed, the public attributes a fresh emulator sets (its run state aside) and the file format."""
        state = {"seed", "clock", "clock_offset", "faults", "received", "issued", "fmt"}
        fresh = vars(cls())
        own = {k: v for k, v in fresh.items() if not k.startswith("_") and k not in state}
        return {**super().knob_defaults(), **own, **vars(fresh["fmt"])}

    def configure(self, **knobs: Any) -> None:
        """Set protocol knobs; the file-format ones (§8.6) update `self.fmt`."""
        layout = {k: knobs.pop(k) for k in list(knobs) if k in files.FileFormat.__dataclass_fields__}
        if layout:
            self.fmt = files.FileFormat(**{**self.fmt.__dict__, **layout})
        for key, value in knobs.items():
            if not hasattr(self, key):
                raise TypeError(f"unknown youlianyun emulator knob {key!r}")
            setattr(self, key, value)

    def routes(self) -> list[Route]:
        """billList (with or without the version segment) and the file server."""
        return [Route("POST", BILL_ROUTE, self._bill_list), Route("GET", re.compile("/fileserver/file"), self._file)]

    def profile(self, base_url: str) -> dict[str, Any]:
        """The sandbox credentials of §8.1 and snappy retry settings."""
        return {
            "base_url": f"{base_url}/{VERSION}", "account_sid": SID, "auth_token": TOKEN, "app_id": APP_ID,
            "retries": 3, "backoff": 0.01, "timeout": 10.0,
        }  # fmt: skip

    def today(self) -> date:
        """Today's date in Asia/Shanghai by the emulator clock."""
        return self.clock().astimezone(UTC8).date()

    def has_bill(self, day: date) -> bool:
        """Whether billList would serve a file for `day` (rather than 100007)."""
        if self.empty or day >= self.today() or day.isoformat() in self.no_data_dates:
            return False
        return self.retention_days is None or (self.today() - day).days <= self.retention_days

    def rows(self, day: date, sid: str = SID, app_id: str = APP_ID) -> list[files.BillRow]:
        """The rows of one day's file."""
        return files.day_rows(self.seed, sid, app_id, day, self.rows_min, self.rows_max)

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        """Every row of every served day the window overlaps (filtered to it unless `day`)."""
        days = [self.today() - timedelta(days=1)] if window.relative == "day" else window.local_days(files.SHANGHAI)
        calls = []
        for day in filter(self.has_bill, days):
            if self.empty_file:
                continue
            for row in self.rows(day):
                if window.relative == "day" or window.contains(row.start_utc):
                    calls.append(ExpectedCall(row.client_id, row.callee, row.start_utc, row.duration))
        return calls

    # --- billList --------------------------------------------------------------------------

    def _bill_list(self, request: Request, match: re.Match[str]) -> Reply:
        if match["suffix"] == ".xml" or "xml" in (request.header("accept") or ""):
            return Reply.text("XML is not implemented by this emulator", 415)
        try:
            body = request.json()
        except ValueError:
            return Reply.text("Bad Request: body is not JSON", 400)
        try:
            self._injected()
            day = self._check(request, match, body if isinstance(body, dict) else {})
            return self._success(request, match["sid"], self._fields(body)[0], day)
        except Answer as answer:
            return self._envelope({"respCode": answer.code})

    def _injected(self) -> None:
        with self._lock:
            if self.resp_error and self.resp_error[1] > 0:
                self.resp_error[1] -= 1
                raise Answer(str(self.resp_error[0]))

    def _fields(self, body: Any) -> tuple[str, str]:
        shapes = {"flat": [body], "wrapped": [body.get("appBill")], "both": [body, body.get("appBill")]}
        for shape in shapes[self.accept_body]:
            if isinstance(shape, dict) and shape.get("appId") and shape.get("date"):
                return str(shape["appId"]), str(shape["date"])
        raise Answer("100003")

    def _check(self, request: Request, match: re.Match[str], body: dict[str, Any]) -> date:
        app_id, when = self._fields(body)
        if not _NAME_OK.fullmatch(app_id):
            raise Answer("102101")
        if when not in ("day", "week", "month") and not when.startswith("20"):
            raise Answer("100004")
        _header_sid, ts = self._authorization(request.header("authorization"), match["sid"])
        sig = request.param("sig")
        if not sig:
            raise Answer("101114")
        self._path_and_clock(match, ts)
        token = self._account(match["sid"], request.client_ip)
        self._application(app_id, match["sid"])
        if sig != hashlib.md5(f"{match['sid']}{token}{ts}".encode()).hexdigest().upper():
            raise Answer("101116")
        return self._bill_day(when)

    def _authorization(self, header: str | None, path_sid: str) -> tuple[str, str]:
        if not header:
            raise Answer("101100")
        try:
            decoded = base64.b64decode(header, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Answer("101101") from None
        sid, _, ts = decoded.partition(":")
        for failed, code in ((not sid, "101102"), (not ts, "101103"), (len(sid) != 32, "101104")):
            if failed:
                raise Answer(code)
        if sid != path_sid:
            raise Answer("101113")
        return sid, ts

    def _path_and_clock(self, match: re.Match[str], ts: str) -> None:
        if len(match["sid"]) != 32:
            raise Answer("101104")
        if not _SID_OK.fullmatch(match["sid"]):
            raise Answer("101105")
        try:
            if not re.fullmatch(r"\d{14}", ts):  # strptime alone would take 13 digits
                raise ValueError(ts)
            sent = datetime.strptime(ts, "%Y%m%d%H%M%S").replace(tzinfo=UTC8)
        except ValueError:
            raise Answer("101106") from None
        if self.now() - sent > timedelta(minutes=self.expiry_minutes):
            raise Answer("101106")
        if match["version"] is not None and match["version"] != VERSION:
            raise Answer("101107")

    def _account(self, sid: str, client_ip: str) -> str:
        if sid not in self.accounts:
            raise Answer("101111")
        if self.account_state:
            raise Answer(self.account_state)
        if self.ip_allow and client_ip not in self.ip_allow:
            raise Answer("100005")
        return self.accounts[sid]

    def _application(self, app_id: str, sid: str) -> None:
        if app_id not in self.apps:
            raise Answer("102102")
        if self.apps[app_id] != sid:
            raise Answer("102105")
        if self.app_state:
            raise Answer(self.app_state)

    def _bill_day(self, when: str) -> date:
        day = self.today() - timedelta(days=1) if when == "day" else self._explicit_date(when)
        if not self.has_bill(day):
            raise Answer("100007")
        return day

    def _explicit_date(self, when: str) -> date:
        forms = {"dash": ("%Y-%m-%d",), "compact": ("%Y%m%d",), "both": ("%Y-%m-%d", "%Y%m%d")}
        for form in forms[self.date_formats]:
            pattern = r"\d{4}-\d{2}-\d{2}" if "-" in form else r"\d{8}"
            if re.fullmatch(pattern, when):
                try:
                    return datetime.strptime(when, form).date()
                except ValueError:
                    break
        raise Answer("100004")

    def _success(self, request: Request, sid: str, app_id: str, day: date) -> Reply:
        rows = self.rows(day, sid, app_id)
        size = -(-len(rows) // self.bill_parts)  # knob `bill_parts`: the day split over several files
        parts = [rows[i : i + size] for i in range(0, len(rows), size)]
        bills = [self._issue(request, sid, app_id, day, part) for part in parts]
        shapes: dict[str, dict[str, Any]] = {"flat": bills[0], "object": {"accountBill": bills[0]}}
        shaped = shapes.get(self.bill_shape, {"accountBill": bills})
        return self._envelope({"respCode": self.success_code, **shaped}, hostile_key="downUrl")

    def _issue(self, request: Request, sid: str, app_id: str, day: date, rows: list[files.BillRow]) -> dict[str, str]:
        """Render one bill file, remember it under an opaque name, return its downUrl and token."""
        body = b"" if self.empty_file else files.render(rows, self.fmt, self.malformed_row)
        if self.corrupt_archive and self.fmt.container != "plain":
            body = files.corrupt(body)
        if self.hostile_archive:  # the bill text in a hostile zip, whatever the `container` knob says
            body = files.hostile_bill(self.hostile_archive, rows, self.fmt, self.malformed_row)
        token = hashlib.md5(body + (b"x" if self.bad_token else b"")).hexdigest()
        opaque = files.file_name(sid, app_id, day, hashlib.sha256(body).hexdigest())
        container = "plain" if self.empty_file else "zip" if self.hostile_archive else self.fmt.container
        with self._lock:
            self.issued[opaque] = Issued(body, token, container)
        return {
            "downUrl": f"http://{request.header('host')}/fileserver/file?fileName={quote(opaque, safe='')}",
            "token": token,
        }

    def _envelope(self, payload: dict[str, Any], *, hostile_key: str = "") -> Reply:
        wrapped = {"resp": payload} if self.envelope == "resp" else payload
        return hostile.json_reply(self.hostile_json if hostile_key else "", wrapped, hostile_key)

    # --- file server -----------------------------------------------------------------------

    def _file(self, request: Request, match: re.Match[str]) -> Reply:
        issued = self.issued.get(request.param("fileName") or "")
        expired = issued and self.url_ttl_seconds is not None
        if issued is None or (expired and time.monotonic() - issued.issued_at > (self.url_ttl_seconds or 0)):
            return Reply.text("file not found", 404)
        if request.param("token") != issued.token:
            return Reply.text("forbidden: bad token", 403)
        with self._lock:
            truncate = self.truncate_download > 0
            self.truncate_download -= int(truncate)
        return Reply(200, issued.body, {"Content-Type": CONTENT_TYPES[issued.container]}, truncate=truncate)


EMULATOR = YoulianyunEmulator
