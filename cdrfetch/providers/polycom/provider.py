"""Poly (Polycom) RealPresence DMA / RPRM: the billing export (generate -> status -> download -> zip).

A DMA builds one CDR export at a time and keeps one global status document, so each chunk POSTs
generate-cdrs, polls that status (checking from the date echo that it describes our export), and
downloads the zip. `legacy: true` (RPRM, older DMA) uses the deprecated one-shot `GET /billing`.

The API text filters on calls that *start* in the window with an inclusive `to-date`, so rows
starting at or after the chunk end are dropped here: they belong to the next window.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from cdrfetch.errors import CdrfetchError, TemporaryError, UnavailableError
from cdrfetch.providers.base import Provider, Setting
from cdrfetch.providers.polycom import status as st
from cdrfetch.providers.polycom.api import Dma
from cdrfetch.windows import Window

if TYPE_CHECKING:
    import pyarrow as pa

    from cdrfetch.archive import Member
    from cdrfetch.client import Client
    from cdrfetch.config import Resolved
    from cdrfetch.files import Verified
    from cdrfetch.records import Batch

STALE_POLLS = 3  # a finished status with other dates this many times in a row means someone else's export


@dataclass
class _Job:
    """Progress of one chunk's export across busy waits and re-POSTs."""

    started: bool = False
    next_post: float = 0.0
    stale: int = 0
    busy: bool = False
    warned_new: bool = False


class Polycom(Provider):
    """Poly RealPresence DMA / RPRM billing export."""

    name = "polycom"
    title = "Poly RealPresence DMA / RPRM (billing export)"
    account_setting = "base_url"
    flow = (
        "POST {base_url}/billing/generate-cdrs?from-date=..&to-date=.. (Basic auth), or GET /billing with legacy",
        "GET the status it points at (default {base_url}/billing/status) every {poll_interval}s until done",
        "GET {base_url}/billing/download-cdrs (the zip of CSVs)",
    )
    max_window = timedelta(days=1)
    settings = (
        Setting("base_url", "DMA REST root, e.g. https://dma.example.com:8443/api/rest"),
        Setting("username", "DMA local or AD user allowed to export CDRs"),
        Setting("password", "password of `username` (Basic auth)", secret=True),
        Setting("legacy", "use the deprecated one-shot GET /billing (RPRM, older DMA)", default=False, kind=bool),
        Setting("max_window_days", "days per export", default=1, kind=int, minimum=1, maximum=366),
        Setting("poll_interval", "first delay between status checks", default=5.0, kind=float),
        Setting("poll_timeout", "seconds to wait for one export, busy waiting included", default=1800.0, kind=float),
        Setting(
            "busy_retry_interval", "seconds before POSTing again while another export runs", default=30.0, kind=float
        ),
        Setting("legacy_timeout", "read timeout in seconds of the one-shot legacy GET", default=600.0, kind=float),
    )

    def __init__(self, settings: Resolved, client: Client) -> None:
        super().__init__(settings, client)
        from requests.auth import HTTPBasicAuth

        self.base_url = str(settings["base_url"]).rstrip("/")
        # bytes, because requests would encode text as Latin-1; the DMA reads UTF-8
        self.auth = HTTPBasicAuth(str(settings["username"]).encode(), str(settings["password"]).encode())
        self._status_url = self.base_url + "/billing/status"
        self.dma = Dma(client, self.auth, self.base_url)

    @classmethod
    def output_tables(cls) -> Mapping[str, pa.Schema]:
        """`calls` and the `conferences` side table."""
        import pyarrow as pa

        from cdrfetch.records import CALLS, side_table

        conferences = side_table(
            *(pa.field(name, pa.string()) for name in ("conf_id", "conf_type", "cluster", "owner", "room_id")),
            pa.field("max_participants", pa.int64()),
            pa.field("class_of_service", pa.string()),
            pa.field("duration_s", pa.int64()),
        )
        return {"calls": CALLS, "conferences": conferences}

    @classmethod
    def account_of(cls, settings: Mapping[str, Any]) -> str:
        """The DMA host name: lowercased, without the port."""
        return (urlsplit(str(settings["base_url"])).hostname or str(settings["base_url"])).lower()

    def fetch(self, chunk: Window) -> Iterator[Batch]:
        """Export, download and parse one chunk."""
        download = self._legacy(chunk) if self.config["legacy"] else self._export(chunk, regenerate=True)
        with download as members:
            yield from self._parse(members, chunk)

    def check(self) -> str:
        """Read the billing status, or (legacy) export an empty window: proves credentials and role."""
        if self.config["legacy"]:
            now = _date(self.client.clock())
            self._download(f"{self.base_url}/billing?from-date={now}&to-date={now}", "polycom billing (legacy)").close()
            return f"legacy billing export allowed for {self.config['username']}"
        status = self._status()
        return f"billing status readable as {self.config['username']} (statusType {status.status_type})"

    # -- the asynchronous export -------------------------------------------------------------------

    def _export(self, chunk: Window, *, regenerate: bool) -> Verified[list[Member]]:
        job = _Job()
        progress = self.client.progress(f"polycom export {chunk.label}", None)
        try:
            status = self._wait(chunk, job, progress)
        finally:
            progress.close()
        if status.verdict() is st.Verdict.PARTIAL:
            self._partial(f"{chunk.label}: the DMA flagged the export {status.status_type}")
        url = st.rebase(status.download_url, self.base_url, "/billing/download-cdrs")
        try:
            return self._download(url, "polycom download-cdrs")
        except CdrfetchError as error:
            if error.http_status not in (404, 409):
                raise
            if regenerate:  # the export vanished (a newer one replaced it): build it once more
                self.client.log.warning("polycom: the export of %s is gone; generating it again", chunk.label)
                return self._export(chunk, regenerate=False)
            raise UnavailableError(
                f"polycom download-cdrs: HTTP {error.http_status} after the status said ready",
                "another client may be exporting CDRs from this DMA; run again later",
            ) from None

    def _wait(self, chunk: Window, job: _Job, progress: Any) -> st.Status:
        hint = "the DMA is still exporting (or another export holds it); raise `poll_timeout` or run again later"
        try:
            return self.client.poll(lambda: self._step(chunk, job, progress), what="polycom export", timeout_hint=hint)
        except TemporaryError as error:
            if job.busy:
                error.message = f"polycom: another CDR export kept the DMA busy for {self.client.poll_timeout:g}s"
            raise

    def _step(self, chunk: Window, job: _Job, progress: Any) -> st.Status | None:
        """One poll: POST when due, else read the status and decide."""
        if not job.started:
            if self.client.monotonic() >= job.next_post:
                job.started = self._generate(chunk)
                job.busy = job.busy or not job.started
                if not job.started:
                    self._busy(job)
            return None
        status = self._status()
        progress.update(status.processed, status.total, _label(status))
        return self._decide(status, chunk, job)

    def _decide(self, status: st.Status, chunk: Window, job: _Job) -> st.Status | None:
        verdict, owned = status.verdict(), status.owned_by(chunk.start, chunk.end)
        if owned is None and verdict in (st.Verdict.DONE, st.Verdict.PARTIAL, st.Verdict.ERROR):
            self.client.log.debug("polycom: the status has no date echo; taking it as ours")
        if verdict is st.Verdict.BUSY or (owned is False and status.status_type == "RUNNING"):
            self._busy(job)
        elif owned is False and verdict is not st.Verdict.WAIT:
            job.stale += 1
            if job.stale >= STALE_POLLS:
                self._busy(job)
        elif verdict in (st.Verdict.DONE, st.Verdict.PARTIAL):
            return status
        elif verdict is st.Verdict.ERROR:
            raise UnavailableError(
                f"polycom export failed: {status.status_type}: {status.message or 'no statusMessage'}",
                "check the DMA (database, cluster state) and run again later",
            )
        elif verdict is st.Verdict.NEW and not job.warned_new:
            job.warned_new = True
            self.client.warn(f"polycom: unknown DMA statusType {status.status_type}; still waiting")
        return None

    def _busy(self, job: _Job) -> None:
        self.client.log.info("polycom: another CDR export is running; next try in %gs", self._busy_interval)
        job.started, job.busy, job.stale = False, True, 0
        job.next_post = self.client.monotonic() + self._busy_interval

    @property
    def _busy_interval(self) -> float:
        return float(self.config["busy_retry_interval"] or 30.0)

    def _generate(self, chunk: Window) -> bool:
        """POST generate-cdrs; True when started, False when another export is running."""
        query = f"from-date={_date(chunk.start)}&to-date={_date(chunk.end)}"
        url = f"{self.base_url}/billing/generate-cdrs?{query}"
        self._status_url = self.base_url + "/billing/status"
        return self.client.retry(lambda: self._generate_once(url, chunk), what="polycom generate-cdrs")

    def _generate_once(self, url: str, chunk: Window) -> bool:
        what = "polycom generate-cdrs"
        try:
            response = self.dma.negotiated("POST", url, what, {"Content-Length": "0"})
        except UnavailableError:
            started = self._running_elsewhere(chunk)  # a 503 may mean "busy": the status tells
            if started is None:
                raise
            return started
        if response.status_code == 409:
            return False
        st.raise_for(response, what)
        self._status_url = st.rebase(response.headers.get("Location"), self.base_url, "/billing/status")
        return True

    def _running_elsewhere(self, chunk: Window) -> bool | None:
        """After a 5xx on POST: False if another export runs, True if ours does, None if neither."""
        try:
            status = self._status()
        except CdrfetchError:
            return None
        if status.verdict() is st.Verdict.BUSY:
            return False
        if status.status_type == "RUNNING":
            return bool(status.owned_by(chunk.start, chunk.end))  # ours: the POST did go through
        return None

    def _status(self) -> st.Status:
        url = self._status_url
        return self.client.retry(lambda: self._status_once(url), what="polycom billing status")

    def _status_once(self, url: str) -> st.Status:
        response = self.dma.negotiated("GET", url, "polycom billing status", {})
        st.raise_for(response, "polycom billing status")
        return st.parse_status(response.content, response.headers.get("Content-Type", ""))

    # -- downloads ---------------------------------------------------------------------------------

    def _legacy(self, chunk: Window) -> Verified[list[Member]]:
        query = f"from-date={_date(chunk.start)}&to-date={_date(chunk.end)}"
        timeout = float(self.config["legacy_timeout"] or 600.0)
        return self._download(f"{self.base_url}/billing?{query}", "polycom billing (legacy)", timeout=timeout)

    def _download(self, url: str, what: str, **kwargs: Any) -> Verified[list[Member]]:
        """The zip, checked (downloaded again when broken); its ETag goes to the run summary."""
        return self.client.verified_download(
            lambda directory: self.dma.download_into(directory, url, what, kwargs),
            lambda path, directory: _export().unpack(path, directory, what),
            what=what,
        )

    # -- parsing -----------------------------------------------------------------------------------

    def _parse(self, members: list[Member], chunk: Window) -> Iterator[Batch]:
        reading = _export().read_export(members, self.output_tables(), account=self.account, chunk_end=chunk.end)
        parsed, excluded, warnings = yield from reading
        for message in warnings:
            self.client.warn(f"polycom: {chunk.label}: {message}")
        if excluded:
            self._partial(f"{chunk.label}: clusters excluded from the export (unreachable): {', '.join(excluded)}")
        self.client.note("counts_line", parsed.counts_line)
        if parsed.after_window:
            self.client.log.debug("polycom: %d rows start at/after %s (next window)", parsed.after_window, chunk.end)

    def _partial(self, reason: str) -> None:
        self.client.partial("polycom: " + reason)


def _export() -> Any:
    """The export zip module, imported when a zip is at hand (it brings pyarrow: `--help` stays light)."""
    from cdrfetch.providers.polycom import export

    return export


def _label(status: st.Status) -> str:
    eta = f", ~{status.remaining_s}s left" if status.remaining_s else ""
    return f"{status.status_type} {status.action_type}{eta}"


def _date(value: datetime) -> str:
    """UTC, whole seconds, explicit offset, percent-encoded (a raw `+` would decode as a space)."""
    return quote(value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"), safe="")


PROVIDER = Polycom
