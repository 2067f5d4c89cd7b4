"""Youlianyun (有联云) application bill download: one signed billList call and one file per day.

Protocol: the Youlianyun spec (sections referenced as §n). Flow per Shanghai day:
sign -> POST billList -> (downUrl, token) -> GET downUrl&token=token -> sniff/decode -> rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from requests.auth import AuthBase

from cdrfetch import archive, http
from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, DataError, UnavailableError
from cdrfetch.providers.base import Provider, Setting
from cdrfetch.providers.youlianyun import codes
from cdrfetch.windows import Window, day_window, zone

if TYPE_CHECKING:
    import requests

    from cdrfetch.files import Verified
    from cdrfetch.records import Batch

UTC8 = timezone(timedelta(hours=8))  # the signing zone, whatever `tz` says (§3.1)
SHANGHAI = "Asia/Shanghai"
HEADERS = {"Accept": "application/json", "Content-Type": "application/json;charset=utf-8"}
RELINK_STATUSES = (403, 404, 410)  # the link or token went stale: ask billList for a fresh one (§4.3)
_WHITESPACE = str.maketrans("", "", " \t\r\n\f\v")
Member = tuple[str, Path]  # (display name, decoded file)


def timestamp(instant: datetime) -> str:
    """The 14-digit UTC+8 timestamp of §3.1 (24-hour clock)."""
    return instant.astimezone(UTC8).strftime("%Y%m%d%H%M%S")


def signature(account_sid: str, auth_token: str, ts: str) -> tuple[str, str]:
    """(`sig`, `Authorization`) for one timestamp: upper-case MD5 and bare Base64 (§3.1)."""
    sig = hashlib.md5(f"{account_sid}{auth_token}{ts}".encode()).hexdigest().upper()
    return sig, base64.b64encode(f"{account_sid}:{ts}".encode()).decode("ascii")


class YoulianyunAuth(AuthBase):
    """Signs each billList request afresh: `sig` in the query, `Authorization` header."""

    def __init__(self, account_sid: str, auth_token: str, clock: Callable[[], datetime]) -> None:
        self.account_sid, self._auth_token, self.clock = account_sid, auth_token, clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        sig, authorization = signature(self.account_sid, self._auth_token, timestamp(self.clock()))
        request.headers["Authorization"] = authorization
        request.url = f"{request.url}{'&' if '?' in (request.url or '') else '?'}sig={sig}"
        return request


class Youlianyun(Provider):
    """Youlianyun / UCPaaS-family billList."""

    name = "youlianyun"
    title = "Youlianyun (有联云) application bills"
    account_setting = "account_sid"
    flow = (
        "POST {base_url}/Accounts/{account_sid}/billList (signed: sig, Authorization) for the day",
        "GET the downUrl it answers, with its token; unpack and parse the bill file",
    )
    settings = (
        Setting("base_url", "API root, version segment included", default="https://api.youlianyun.com/2014-06-30"),
        Setting("account_sid", "32-character account id (主账户ID)"),
        Setting("auth_token", "account auth token (账户授权令牌)", secret=True),
        Setting("app_id", "application id, sent as appId"),
        Setting("body_style", "billList body shape", default="flat", choices=("flat", "wrapped")),
        Setting("date_style", "explicit dates as yyyy-MM-dd or yyyyMMdd", default="dash", choices=("dash", "compact")),
        Setting("format", "response representation", default="json", choices=("json",)),
        Setting("tz", "zone of the naive startTime values in the bill file", default=SHANGHAI),
        Setting(
            "verify_token", "MD5 check of the file against token", default="warn", choices=("warn", "strict", "off")
        ),
    )

    _window: Window | None = None

    @property
    def signer(self) -> YoulianyunAuth:
        """The request signer, on the client's clock."""
        return YoulianyunAuth(self.config["account_sid"], self.config["auth_token"], self.client.clock)

    def chunks(self, window: Window) -> list[Window]:
        """One chunk per Shanghai day; today and later are skipped (their file does not exist yet)."""
        shanghai = zone(SHANGHAI)
        today = self.client.clock().astimezone(shanghai).date()
        if window.relative == "day":
            return [day_window(today - timedelta(days=1), shanghai, relative="day")]
        self._window = window
        days = window.local_days(shanghai)
        for day in (d for d in days if d >= today):
            message = f"{day}: skipped, the bill of a Shanghai day exists only once the day is over"
            self.client.warn(message)
        return [day_window(d, shanghai) for d in days if d < today]

    def fetch(self, chunk: Window) -> Iterator[Batch]:
        """Request the day's bill link(s), download, verify and parse them."""
        from cdrfetch.providers.youlianyun.parse import DayParser
        from cdrfetch.records import Batch

        day = chunk.start.astimezone(zone(SHANGHAI)).date()
        asked = "day" if chunk.relative == "day" else self._date_text(day)
        keep = None if chunk.relative == "day" else (self._window or chunk)
        parser = DayParser(self.config["account_sid"], self.config["app_id"], zone(self.config["tz"]), keep)
        links = self.bill_list(asked)
        if len(links) > 1:
            self.client.warn(f"{day}: billList returned {len(links)} files; all are read as that day's data")
        for index in range(len(links)):
            with self._members(asked, links, index, day) as members:
                for name, member in members:
                    for data in parser.parse(member, name):
                        yield Batch("calls", data)

    def check(self) -> str:
        """Ask for yesterday's bill link (proves account, token, app and clock)."""
        links = self.bill_list("day")
        return f"billList accepted the signature; {len(links)} bill file(s) for yesterday"

    # --- billList --------------------------------------------------------------------------

    def _date_text(self, day: date) -> str:
        return day.strftime("%Y%m%d" if self.config["date_style"] == "compact" else "%Y-%m-%d")

    def _body(self, asked: str) -> bytes:
        fields = {"appId": self.config["app_id"], "date": asked}
        payload = {"appBill": fields} if self.config["body_style"] == "wrapped" else fields
        return json.dumps(payload, separators=(",", ":")).encode("utf-8")

    def bill_list(self, asked: str) -> list[tuple[str, str]]:
        """(downUrl, token) pairs for `asked` (`day` or a date); [] when there is no bill (100007)."""
        url = f"{self.config['base_url'].rstrip('/')}/Accounts/{self.config['account_sid']}/billList"
        what = f"youlianyun billList {asked}"

        def attempt() -> list[tuple[str, str]]:
            response = self.client.send(
                "POST", url, what=what, data=self._body(asked), headers=HEADERS, auth=self.signer
            )
            http.fail_on_status(response, what, {404: "check `base_url` (it includes the version segment)"})
            return codes.links(response.content, what)

        return self.client.retry(attempt, what=what)

    # --- download --------------------------------------------------------------------------

    def _members(self, asked: str, links: list[tuple[str, str]], index: int, day: date) -> Verified[list[Member]]:
        """Download link `index` and unpack it; a damaged, empty or (strict) mismatching file is fetched again."""
        name = f"bill {day}" + (f" #{index + 1}" if len(links) > 1 else "")
        return self.client.verified_download(
            lambda directory: self._download_fresh(asked, links, index, name, directory),
            lambda got, directory: self._unpack(*got, name, directory),
            what=name,
        )

    def _unpack(self, path: Path, token: str, name: str, directory: Path) -> list[Member]:
        """(display name, file) of every member, after the emptiness and token checks of §4.3."""
        if path.stat().st_size == 0 and token.lower() != codes.EMPTY_MD5:
            raise UnavailableError(
                f"{name}: empty download", "the file server sent no bytes; run again later", retryable=True
            )
        members = archive.extract(path, directory, name=name)
        self._check_token(path, members, token, name)
        if len(members) > 1:
            self.client.warn(f"{name}: the archive holds {len(members)} files; all are read")
        return [(f"{name}:{m.name}" if m.name != name else name, m.path) for m in members]

    def _download_fresh(
        self, asked: str, links: list[tuple[str, str]], index: int, name: str, directory: Path
    ) -> tuple[Path, str]:
        """Download, asking billList once for a fresh link when the file server says 403/404/410."""
        try:
            return self._download(*links[index], name, directory), links[index][1]
        except CdrfetchError as error:
            if error.http_status not in RELINK_STATUSES:
                raise
            self.client.log.warning("%s: HTTP %s on download; requesting a fresh link", name, error.http_status)
        links[:] = self.bill_list(asked)
        if index >= len(links):
            raise UnavailableError(f"{name}: the fresh billList answer no longer lists this file", "run again later")
        try:
            return self._download(*links[index], name, directory), links[index][1]
        except (AuthError, ConfigError) as error:
            raise UnavailableError(
                f"{name}: download failed again after a fresh link ({error.message})",
                "the file server keeps refusing the link; run again later",
            ) from None

    def _download(self, down_url: str, token: str, name: str, directory: Path) -> Path:
        # §2.6: downUrl is opaque; concatenate, never re-encode (its %2B %2F %0A %3D must survive)
        url = down_url.translate(_WHITESPACE) + "&token=" + token.translate(_WHITESPACE)
        path = self.client.download(url, what=f"youlianyun download {name}", into=directory)
        head = _head(path)
        if head.lstrip()[:1] in (b"{", b"<") and b"respCode" in head:  # an error answer, not a bill
            limit = self.client.answer_limits.max_bytes
            if limit is not None and path.stat().st_size > limit:
                raise DataError(
                    f"youlianyun download {name}: an error answer of {path.stat().st_size} bytes", "report it"
                )
            codes.raise_for_body(path.read_bytes(), f"youlianyun download {name}")
        return path

    def _check_token(self, path: Path, members: list[archive.Member], token: str, name: str) -> None:
        """§5.2 rule 3: the token is the MD5 of the body, or of the decompressed member(s)."""
        mode = self.config["verify_token"]
        if mode == "off":
            return
        digests = [archive.file_digest(path, "md5")]
        if members[0].path != path:  # a container: the token may be the MD5 of the members instead
            digests += [archive.file_digest(m.path, "md5") for m in members]
        if token.lower() in digests:
            return
        message = f"{name}: MD5 {digests[0]} does not match the download token ({token[:6]}…)"
        if mode == "warn":
            self.client.warn(message)
            return
        hint = "the file changed in transit or the token is wrong; `verify_token: warn` accepts it"
        raise DataError(message, hint, retryable=True)


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(512)


PROVIDER = Youlianyun
