"""Emulator of a Poly RealPresence DMA's billing REST resource (generate -> status -> download, legacy GET).

Like a DMA it keeps one global export and one status document, checks HTTP Basic credentials on
every request (401 + WWW-Authenticate; 403 for a user without the CDR role) and builds one export at
a time. Every knob of spec §8.5 is a plain attribute; `tls=True` serves HTTPS with a freshly
generated self-signed certificate (the `cryptography` package, imported only here).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cdrfetch.providers.polycom.emulator import data, http, jobs
from cdrfetch.providers.polycom.emulator.jobs import PHASES, Export
from cdrfetch.providers.polycom.emulator.knobs import Knobs, shared_fault
from cdrfetch.sandbox import tls
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route
from cdrfetch.windows import Window

ROOT = "/api/rest/billing"
STATUS_JSON = "application/vnd.plcm.plcm-billing-status+json"
STATUS_XML = "application/vnd.plcm.plcm-billing-status+xml"
SANDBOX_USER = ("sandbox", "sandbox-password")
NO_ROLE_USER = ("viewer", "viewer-password")


class PolycomEmulator(Knobs, Emulator):
    """A DMA billing resource on loopback, with the fault knobs of the spec."""

    name = "polycom"
    malformed_where = "calls.csv line 2"
    unsupported_faults = frozenset({"clock_offset"})  # HTTP Basic authentication carries no timestamp
    hostile_data = frozenset({"hostile_archive", "hostile_json"})  # the export zip; the JSON status

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        tls: bool = False,
        cluster_tz: str = "America/New_York",
        latency_ms: float = 0.0,
        **knobs: Any,
    ) -> None:
        super().__init__(seed=seed, clock=clock)
        for knob, value in knobs.items():
            if knob not in Knobs.__annotations__:
                raise TypeError(f"unknown polycom emulator knob {knob!r}")
            setattr(self, knob, value)
        self.tls = tls
        self.tz = ZoneInfo(cluster_tz)
        self.faults.latency = latency_ms / 1000
        self.users = {SANDBOX_USER[0]: SANDBOX_USER[1], NO_ROLE_USER[0]: NO_ROLE_USER[1]}
        self.no_role_user = NO_ROLE_USER[0]
        self.failed_auth = 0
        self.export: Export | None = None
        self.rejected: tuple[datetime, datetime] | None = None
        self.foreign_used = False
        self.ca_pem: bytes | None = None

    def _fault(self, name: str, value: Any) -> None:
        shared_fault(self, name, value)

    @classmethod
    def knob_defaults(cls) -> dict[str, Any]:
        """The constructor keywords and every attribute of `Knobs`."""
        return {**super().knob_defaults(), **{name: getattr(Knobs, name) for name in Knobs.__annotations__}}

    # -- the Emulator interface --------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The billing resource under /api/rest."""
        return [
            Route("POST", re.compile(ROOT + "/generate-cdrs"), self._generate),
            Route("GET", re.compile(ROOT + "/status"), self._status),
            Route("GET", re.compile(ROOT + "/download-cdrs"), self._download),
            Route("GET", re.compile(ROOT), self._legacy),
        ]

    def handle(self, request: Request) -> Reply:
        """Basic auth first (after the shared faults), then the routes; unknown paths get plcm-error 404."""
        reply = super().handle(request)
        if reply.status == 404 and reply.body == b"not found":
            return http.error_reply(404, "resource not found")
        return reply

    def profile(self, base_url: str) -> dict[str, Any]:
        """Settings for this emulator: sandbox user, quick polling, the CA file when serving HTTPS."""
        quick = min(0.5, max(0.01, float(self.phase_seconds) / 2))
        settings: dict[str, Any] = {
            "base_url": f"{base_url}/api/rest", "username": SANDBOX_USER[0], "password": SANDBOX_USER[1],
            "poll_interval": quick, "busy_retry_interval": quick, "backoff": 0.01, "poll_timeout": 60.0,
            "legacy_timeout": 30.0,
        }  # fmt: skip
        if self.ca_pem is not None:
            settings["ca_bundle"] = tls.ca_file(self.ca_pem)
        return settings

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        """Every call record starting in [start, end), from the generator (not from the zip)."""
        calls, _ = data.records(
            self.seed, SANDBOX_USER[0], window.start, window.end, int(self.calls_per_hour), inclusive=False
        )
        return [ExpectedCall(c.orig, c.dest if self.header else None, c.start, c.duration_s) for c in calls]

    def expected_conferences(self, window: Window) -> list[data.Conference]:
        """Every conference starting in [start, end)."""
        return data.records(
            self.seed, SANDBOX_USER[0], window.start, window.end, int(self.calls_per_hour), inclusive=False
        )[1]

    def server_tls(self) -> ssl.SSLContext | None:
        """HTTPS with a self-signed certificate for 127.0.0.1 when `tls` is on."""
        if not self.tls:
            return None
        pem, key = tls.self_signed()
        self.ca_pem = pem
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as scratch:
            cert_path, key_path = os.path.join(scratch, "cert.pem"), os.path.join(scratch, "key.pem")
            for path, content in ((cert_path, pem), (key_path, key)):
                with open(path, "wb") as out:
                    out.write(content)
            context.load_cert_chain(cert_path, key_path)
        return context

    # -- routes ------------------------------------------------------------------------------------

    def _auth(self, request: Request) -> Reply | None:
        """None when the request carries valid credentials of a user with the CDR role."""
        user = http.basic_user(request.header("Authorization"), self.users)
        if self.reject_auth or user is None:
            with self._lock:
                self.failed_auth += 1
            return http.error_reply(
                401, "authentication required", **{"WWW-Authenticate": 'Basic realm="RealPresence DMA"'}
            )
        if user == self.no_role_user:
            return http.error_reply(403, "the user has no role that allows CDR export")
        return None

    def _guard(self, request: Request, *, async_route: bool) -> Reply | None:
        if async_route and self.legacy_only:
            return http.error_reply(404, "resource not found")
        return self._auth(request)

    def _generate(self, request: Request, match: re.Match[str]) -> Reply:
        denied = self._guard(request, async_route=True)
        if denied:
            return denied
        window = http.form_window(request.target, self.clock(), self.tz)
        if window is None:
            return http.error_reply(400, "from-date / to-date are not valid xs:dateTime values or from-date > to-date")
        with self._lock:
            now = self.clock()
            self._start_foreign(now, window)
            if self.export is not None and not self._finished(self.export, now):
                return self._busy(request, window)
            self.rejected = None
            self.export = Export(window[0], window[1], now, seconds=float(self.phase_seconds) * len(PHASES))
        return self._accepted(request)

    def _start_foreign(self, now: datetime, window: tuple[datetime, datetime]) -> None:
        """The first POST finds another client's export already running (knob foreign_export_seconds)."""
        if self.foreign_export_seconds and not self.foreign_used:
            self.foreign_used = True
            start = window[0] - timedelta(days=7)
            self.export = Export(
                start, start + timedelta(days=1), now, own=False, seconds=float(self.foreign_export_seconds)
            )

    def _busy(self, request: Request, window: tuple[datetime, datetime]) -> Reply:
        if self.busy_mode in ("409", "503"):
            return http.error_reply(int(self.busy_mode), "another CDR export is being generated")
        self.rejected = window
        return self._accepted(request)

    def _accepted(self, request: Request) -> Reply:
        if self.no_location:
            return Reply(202)
        return Reply(202, headers={"Location": f"{self._origin(request)}{ROOT}/status"})

    def _status(self, request: Request, match: re.Match[str]) -> Reply:
        denied = self._guard(request, async_route=True)
        if denied:
            return denied
        with self._lock:
            fields = self._status_fields(request, self.clock())
        if self.xml_only or http.prefers_xml(request.header("Accept") or ""):
            return Reply(200, data.status_xml(fields), {"Content-Type": STATUS_XML})
        return Reply(200, data.status_body(fields, self.hostile_json), {"Content-Type": STATUS_JSON})

    def _status_fields(self, request: Request, now: datetime) -> dict[str, object]:
        export = self.export
        if export is None or (self.stale_complete and export.own and jobs.age(export, now) < self.phase_seconds):
            if self.stale_complete:
                return self._done_fields(request, jobs.stale_export(now), "GENERATION_COMPLETE")
            return {"actionType": "NOT_STARTED", "statusType": "NOT_STARTED", "downloadReady": False}
        if self.rejected is not None:
            if not self._finished(export, now):
                return {
                    "actionType": "NOT_STARTED",
                    "statusType": "ERROR_ANOTHER_CDR_IS_BEING_GENERATED",
                    "downloadReady": False,
                    "statusMessage": "Another CDR export is being generated",
                    **jobs.echo(*self.rejected, self.tz),
                }
            self.rejected = None
        if not self._finished(export, now):
            total = self._zip(export)[1]
            return jobs.running_fields(export, now, total, self.tz, stuck=self.never_ready and export.own)
        if export.own and self.error_status:
            return {
                "actionType": "CREATING_CDR_FILE",
                "statusType": self.error_status,
                "downloadReady": False,
                "statusMessage": f"CDR export failed ({self.error_status})",
                **jobs.echo(export.start, export.end, self.tz),
            }
        return self._done_fields(request, export, (export.own and self.warn_status) or "GENERATION_COMPLETE")

    def _done_fields(self, request: Request, export: Export, status_type: str) -> dict[str, object]:
        total = self._zip(export)[1]
        return jobs.done_fields(export, total, status_type, f"{self._origin(request)}{ROOT}/download-cdrs", self.tz)

    def _download(self, request: Request, match: re.Match[str]) -> Reply:
        denied = self._guard(request, async_route=True)
        if denied:
            return denied
        with self._lock:
            now = self.clock()
            export = self.export
            if export is not None and export.own and self.stale_complete and jobs.age(export, now) < self.phase_seconds:
                export = jobs.stale_export(now)
            ready = export is not None and self._finished(export, now) and not (export.own and self.error_status)
            if not ready or export is None:
                return http.error_reply(int(self.download_not_ready_status), "no CDR export is ready for download")
            body = self._zip(export)[0]
        return self._zip_reply(body, jobs.done_at(export))

    def _legacy(self, request: Request, match: re.Match[str]) -> Reply:
        denied = self._auth(request)
        if denied:
            return denied
        window = http.form_window(request.target, self.clock(), self.tz)
        if window is None:
            return http.error_reply(400, "from-date / to-date are not valid xs:dateTime values or from-date > to-date")
        time.sleep(float(self.legacy_delay))
        export = Export(window[0], window[1], self.clock())
        return self._zip_reply(self._zip(export)[0], self.clock())

    # -- helpers -----------------------------------------------------------------------------------

    def _zip_reply(self, body: bytes, created: datetime) -> Reply:
        """The zip with its ETag, broken on purpose when a truncation or corruption knob is armed."""
        stamp = data.unix(created)
        etag = str(stamp * 1000) if self.etag_format == "bare-millis" else f'"{stamp}"'
        headers = {
            "Content-Type": "application/zip",
            "ETag": etag,
            "Content-Disposition": 'attachment; filename="cdrExport.zip"',
        }
        with self._lock:
            mode = self.truncate_zip if self.truncate_times > 0 else None
            self.truncate_times -= 1 if mode else 0
            corrupt = self.corrupt_zip and self.corrupt_times > 0
            self.corrupt_times -= 1 if corrupt else 0
        if corrupt:
            body = http.corrupt(body)
        if mode == "short":
            return Reply(200, body[: len(body) // 2], headers)
        return Reply(200, body, headers, truncate=mode == "lying")

    def _zip(self, export: Export) -> tuple[bytes, int]:
        """The export's zip and its record count (built once per export)."""
        if export.zip_bytes is None:
            export.zip_bytes, export.records = data.export_zip(self, export.start, export.end)
        return export.zip_bytes, export.records

    def _origin(self, request: Request) -> str:
        host = self.location_host or request.header("Host") or "127.0.0.1"
        return f"{'https' if self.tls else 'http'}://{host}"

    def _finished(self, export: Export, now: datetime) -> bool:
        if self.never_ready and export.own:
            return False
        return jobs.age(export, now) >= export.seconds


EMULATOR = PolycomEmulator
