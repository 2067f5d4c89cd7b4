"""Huawei CEC / AICC, CC-FS: asynchronous CDR and recording-index export (spec: specs/huawei-cec.md).

Per chunk of at most 3 days: POST queryBillData -> responseId; poll downloadBillFile with
`yyyyMMdd_<responseId without dashes>.zip` until the zip arrives (0300011 = not yet); unzip;
`_call*` members -> calls, `_record*` members -> recordings. Every request is signed with auth-v2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cdrfetch import archive, records
from cdrfetch.errors import AuthError, ConfigError, DataError, UnavailableError
from cdrfetch.providers.base import Provider, Setting
from cdrfetch.providers.huawei_cec import codes
from cdrfetch.providers.huawei_cec import columns as cols
from cdrfetch.providers.huawei_cec.api import AUTH_HINT, Attempts, Ccfs
from cdrfetch.providers.huawei_cec.parse import Context, member_kind, parse_members
from cdrfetch.providers.huawei_cec.signing import DEFAULT_SIGNED, AuthV2
from cdrfetch.untrusted import shown
from cdrfetch.windows import Window, zone

if TYPE_CHECKING:
    import pyarrow as pa

    from cdrfetch.client import Client
    from cdrfetch.config import Resolved
    from cdrfetch.files import Verified

QUERY = "/CCFS/resource/ccfs/queryBillData"
DOWNLOAD = "/CCFS/resource/ccfs/downloadBillFile"
DOWNLOAD_TIMEOUT = 300.0  # seconds to wait for a large zip (spec §7.3)
DOWNLOAD_WHAT = "downloadBillFile"


@dataclass
class Job:
    """One export on the server: its id, when it was requested, and the file name that worked."""

    response_id: str
    issued: datetime
    started: float  # the client's monotonic time when the export was requested
    name: str | None = None
    checks: int = 0


class HuaweiCec(Provider):
    """Huawei CEC (CC-FS) CDRs and recording indexes."""

    name = "huawei-cec"
    title = "Huawei CEC (CC-FS)"
    account_setting = "ak"
    flow = (
        "POST {base_url}/CCFS/resource/ccfs/queryBillData (auth-v2 signed) for the chunk -> responseId",
        "POST {base_url}/CCFS/resource/ccfs/downloadBillFile every {poll_interval}s until the zip is ready",
    )
    max_window = timedelta(days=3)
    settings = (
        Setting("base_url", "https://<CC-FS or NSLB ip>:<port>, no path (e.g. https://10.0.0.1:28443)"),
        Setting("ak", "access key (developer ID / appId); also the `account` column"),
        Setting("sk", "secret key", secret=True),
        Setting("signed_headers", "headers auth-v2 signs (alternative: host)", default=DEFAULT_SIGNED),
        Setting("data_type", "what to export", default="call_record", choices=("call", "record", "call_record")),
        Setting(
            "callback_url",
            "callBackURL the API requires (cdrfetch does not listen on it)",
            default="https://cdrfetch.invalid/callback",
        ),
        Setting("account_id", "optional accountId filter (tenant space)", default="", required=False),
        Setting("max_window_days", "chunk length in days (at most 3)", default=3, kind=int, minimum=1, maximum=3),
        Setting("poll_interval", "seconds before the first download attempt (grows x1.5)", default=10.0, kind=float),
        Setting("poll_timeout", "seconds to wait for one export before giving up", default=1800.0, kind=float),
        Setting("flow_backoff", "first wait after a flow-control code (doubles, max 300 s)", default=30.0, kind=float),
    )

    @classmethod
    def output_tables(cls) -> Mapping[str, pa.Schema]:
        """`calls` and the `recordings` side table."""
        return {"calls": records.CALLS, "recordings": cols.RECORDINGS}

    def __init__(self, settings: Resolved, client: Client) -> None:
        super().__init__(settings, client)
        self._validate()
        self.base_url = str(self.config["base_url"]).rstrip("/")
        self.zone = zone(str(self.config["tz"]))
        self.auth = AuthV2(
            str(self.config["ak"]),
            str(self.config["sk"]),
            clock=client.clock,
            signed_headers=str(self.config["signed_headers"]),
        )
        self.api = Ccfs(client, self.auth, self.base_url, float(self.config["flow_backoff"]))
        self._auth_failed: str | None = None

    def _validate(self) -> None:
        if "host" not in str(self.config["signed_headers"]).lower().split(";"):
            raise ConfigError("huawei-cec: signed_headers must include host", f"use {DEFAULT_SIGNED!r} or 'host'")

    def fetch(self, chunk: Window) -> Iterator[records.Batch]:
        """Generate, wait for and parse the export of one chunk."""
        if self._auth_failed:
            raise AuthError(f"huawei-cec: skipped after an earlier failure: {self._auth_failed}", AUTH_HINT)
        try:
            yield from self._fetch(chunk)
        except AuthError as error:
            self._auth_failed = error.message  # later chunks would only add to the IP-lock counter
            raise

    def _fetch(self, chunk: Window) -> Iterator[records.Batch]:
        issued = self.client.clock()
        response_id = self._generate(chunk)
        if response_id is None:
            self.client.log.info("huawei-cec: no records in %s (0300012)", chunk.label)
            return
        self.client.note("response_ids", response_id, chunk=chunk.label)
        with self._wait(Job(response_id, issued, self.client.monotonic())) as members:
            for member in members:
                if member_kind(member.name) is None:
                    self.client.log.debug("huawei-cec: ignoring archive member %s", member.name)
            if members and not any(member_kind(member.name) for member in members):
                self.client.warn(f"huawei-cec: export {response_id} holds no _call or _record member")
            yield from parse_members(members, Context(str(self.config["ak"]), self.zone, self.client.warn))

    def check(self) -> str:
        """Ask for a file that cannot exist: 0300011 proves the signature was accepted."""
        found = self._download_round("19700101_" + "0" * 32 + ".zip")
        if found is not None:
            found.close()
        return f"auth-v2 signature accepted by {self.base_url} for ak {self.config['ak']}"

    # -- generate -----------------------------------------------------------------------------

    def _generate(self, chunk: Window) -> str | None:
        """queryBillData -> responseId (None when CC-FS says there are no records)."""
        body: dict[str, str] = {
            "beginTime": self._local(chunk.start),
            "endTime": self._local(chunk.end),
            "dataType": str(self.config["data_type"]),
            "callBackURL": str(self.config["callback_url"]),
        }
        if self.config["account_id"]:
            body["accountId"] = str(self.config["account_id"])
        attempts = Attempts()
        payload = self.client.retry(lambda: self._query_once(body, attempts), what="queryBillData")
        if payload is None:
            return None
        data = payload.get("resultData")
        response_id = data.get("responseId") if isinstance(data, dict) else None
        if not isinstance(response_id, str) or not response_id.strip("-"):
            raise DataError("queryBillData: accepted without a responseId", "report this CC-FS answer")
        if not response_id.isprintable():  # it goes into file names and request bodies (a lone surrogate has no UTF-8)
            raise DataError(f"queryBillData: responseId {shown(response_id)} is not text", "report this CC-FS answer")
        return response_id

    def _query_once(self, body: dict[str, str], attempts: Attempts) -> dict[str, Any] | None:
        response = self.api.post(QUERY, body, attempts, what="queryBillData")
        with response:
            payload = codes.parse_json(response.content, "queryBillData")
        return self.api.result(payload, "queryBillData", attempts)

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    # -- wait and download --------------------------------------------------------------------

    def _wait(self, job: Job) -> Verified[list[archive.Member]]:
        """Poll downloadBillFile until the zip (or 0300012) arrives; exit 75 with the id on timeout."""
        progress = self.client.progress("huawei-cec export", None)
        hint = (
            f"export responseId {job.response_id} (billFileName {self._names(job)[0]}) may still finish on CC-FS; "
            "raise `poll_timeout` and run again"
        )
        try:
            return self.client.poll(
                lambda: self._poll_round(job, progress.update), what="downloadBillFile", timeout_hint=hint
            )
        finally:
            progress.close()

    def _poll_round(self, job: Job, update: Callable[..., None]) -> Verified[list[archive.Member]] | None:
        job.checks += 1
        update(status=f"CC-FS is generating the export (check {job.checks})")
        for name in self._names(job):
            members = self._download_round(name)
            if members is not None:
                job.name = name
                return members
        return None

    def _names(self, job: Job) -> list[str]:
        """billFileName candidates: the date in `tz`; from half the timeout also UTC and +-1 day (§2.3)."""
        stem = "_" + job.response_id.replace("-", "") + ".zip"
        local = job.issued.astimezone(self.zone).date()
        if job.name or self.client.monotonic() - job.started < self.client.poll_timeout / 2:
            return [job.name or f"{local:%Y%m%d}{stem}"]
        days = [local, _utc_date(job.issued), local - timedelta(days=1), local + timedelta(days=1)]
        unique = list(dict.fromkeys(days))
        return [f"{day:%Y%m%d}{stem}" for day in unique]

    def _download_round(self, name: str) -> Verified[list[archive.Member]] | None:
        """One download (retried on 5xx and flow control; a damaged zip is fetched again).

        The members ([] when CC-FS says there are no records), or None while the file is not ready.
        """
        verified = self.client.verified_download(
            lambda directory: self._download_once(name, directory),
            lambda got, directory: archive.extract(got, directory, name=name) if isinstance(got, Path) else got,
            what=f"downloadBillFile {name}",
        )
        if verified.value is None:
            verified.close()
            return None
        return cast("Verified[list[archive.Member]]", verified)

    def _download_once(self, name: str, directory: Path) -> Path | list[archive.Member] | None:
        attempts = Attempts()
        return self.client.retry(lambda: self._download_attempt(name, attempts, directory), what=DOWNLOAD_WHAT)

    def _download_attempt(self, name: str, attempts: Attempts, directory: Path) -> Path | list[archive.Member] | None:
        timeout = max(self.client.timeout, DOWNLOAD_TIMEOUT)
        response = self.api.post(
            DOWNLOAD, {"billFileName": name}, attempts, what=DOWNLOAD_WHAT, stream=True, timeout=timeout
        )
        with response:
            if "json" in response.headers.get("Content-Type", "").lower():
                body = self.client.body(response, what=DOWNLOAD_WHAT)
                return self._download_code(codes.parse_json(body, DOWNLOAD_WHAT), attempts)
            path = self.client.save(response, what=f"downloadBillFile {name}", suffix=".zip", into=directory)
        with open(path, "rb") as handle:
            head = handle.read(200)
        if head.lstrip().startswith(b"{"):  # a JSON error served with the wrong content type
            return self._download_code(codes.parse_json(path.read_bytes(), DOWNLOAD_WHAT), attempts)
        if archive.sniff(path) != archive.ZIP:
            raise UnavailableError(
                f"downloadBillFile: neither a zip nor JSON: {head[:200]!r}",
                "a proxy may be answering instead of CC-FS; check `base_url`",
                retryable=True,
            )
        return path

    def _download_code(self, payload: dict[str, Any], attempts: Attempts) -> list[archive.Member] | None:
        code = codes.result_code(payload)
        if code == codes.NOT_READY:
            return None
        if code == "0":
            raise DataError("downloadBillFile: result 0 without a zip", "report this CC-FS answer")
        self.api.result(payload, "downloadBillFile", attempts)  # raises for every code but 0300012
        return []


def _utc_date(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


PROVIDER = HuaweiCec
