"""Polycom DMA answers: `plcm-billing-status` documents (JSON or XML), what each status and HTTP code means."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from cdrfetch.errors import AuthError, ConfigError, DataError, UnavailableError
from cdrfetch.untrusted import JSON_FAILURES, read_json

if TYPE_CHECKING:
    from requests import Response

STATUS_TYPES = "application/vnd.plcm.plcm-billing-status+json, application/vnd.plcm.plcm-error+json"
ZIP_TYPES = "application/zip, application/octet-stream, application/vnd.plcm.plcm-error+json"
ROLE_HINT = "give the DMA user a role that may export CDRs (e.g. Administrator or Auditor)"
LEGACY_HINT = "check `base_url` (https://<dma-host>:8443/api/rest), or set `legacy: true` for RPRM and older DMA"
_WAIT = {"NOT_STARTED", "RUNNING", "UNKNOWN"}
_DONE = {"SUCCESS", "GENERATION_COMPLETE"}
BUSY = "ERROR_ANOTHER_CDR_IS_BEING_GENERATED"


class Verdict(Enum):
    """What the client does with a status (spec §4.2)."""

    WAIT = "wait"  # keep polling
    DONE = "done"  # download
    PARTIAL = "partial"  # download, then warn and mark the run partial
    BUSY = "busy"  # another export holds the DMA: wait, POST again
    ERROR = "error"  # stop the chunk (unavailable)
    NEW = "new"  # a value this version does not know: keep polling, warn once


@dataclass(frozen=True)
class Status:
    """The fields of a `plcm-billing-status` the client acts on."""

    status_type: str
    action_type: str
    download_ready: bool
    download_url: str | None
    message: str | None
    entity_tag: str | None
    total: int | None
    processed: int | None
    remaining_s: int | None
    from_date: str | None
    to_date: str | None

    def verdict(self) -> Verdict:
        """The spec's decision for this statusType (unknown values by prefix)."""
        kind = self.status_type
        if kind == BUSY:
            return Verdict.BUSY
        if kind in _WAIT:
            return Verdict.WAIT
        if kind in _DONE:
            return Verdict.DONE if self.download_ready else Verdict.WAIT
        if kind.startswith("WARN"):
            return Verdict.PARTIAL if self.download_ready else Verdict.WAIT
        return Verdict.ERROR if kind.startswith("ERROR") else Verdict.NEW

    def owned_by(self, start: datetime, end: datetime) -> bool | None:
        """Whether the from/to echo names these instants (None when the DMA sent no echo)."""
        if not self.from_date or not self.to_date:
            return None
        try:
            echo = (_instant(self.from_date), _instant(self.to_date))
        except ValueError:
            return None
        return echo == (start, end)


def _instant(text: str) -> datetime:
    from cdrfetch.providers.polycom.parse import parse_time

    return parse_time(text)[0]


def parse_status(body: bytes, content_type: str) -> Status:
    """A status document from JSON (bare, wrapped, camel or kebab keys) or XML (namespaces ignored)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        fields = _xml_fields(text) if text.startswith("<") or "xml" in content_type else _json_fields(text)
    except (ValueError, SyntaxError):
        raise DataError("polycom billing status: the body is neither JSON nor XML", retryable=True) from None
    get = _getter(fields)
    status_type = get("statusType")
    if not status_type:
        raise DataError("polycom billing status: no statusType in the answer", retryable=True)
    return Status(
        status_type=status_type.strip().upper(),
        action_type=(get("actionType") or "UNKNOWN").strip(),
        download_ready=(get("downloadReady") or "").strip().lower() == "true",
        download_url=get("downloadUrl") or None,
        message=get("statusMessage") or None,
        entity_tag=get("entityTag") or None,
        total=_int(get("totalNumberCdrRecords")),
        processed=_int(get("numberCdrRecordsProcessed")),
        remaining_s=_int(get("estimatedTimeRemainingSeconds")),
        from_date=get("fromDate") or None,
        to_date=get("toDate") or None,
    )


def _json_fields(text: str) -> dict[str, Any]:
    document = read_json(text)
    if not isinstance(document, dict):
        raise ValueError("not an object")
    for key in ("plcmBillingStatus", "plcm-billing-status"):
        if isinstance(document.get(key), dict):
            return dict(document[key])
    return document


def _xml_fields(text: str) -> dict[str, Any]:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(text)
    return {element.tag.rsplit("}", 1)[-1]: (element.text or "") for element in root}


def _getter(fields: dict[str, Any]) -> Any:
    """Look a field up by camelCase name, also accepting kebab-case and any letter case."""
    normal = {re.sub(r"[-_]", "", str(key)).lower(): value for key, value in fields.items()}

    def get(name: str) -> str | None:
        value = normal.get(name.lower())
        if value is None or isinstance(value, (dict, list)):  # no field is an object (whose text could nest on)
            return None
        return json.dumps(value) if isinstance(value, bool) else str(value)

    return get


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def rebase(url: str | None, base_url: str, default_path: str) -> str:
    """A URL the DMA handed back, moved onto `base_url`'s origin (credentials never leave it)."""
    base = urlsplit(base_url)
    if not url:
        return base_url.rstrip("/") + default_path
    target = urlsplit(urljoin(base_url.rstrip("/") + "/", url))
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))


def etag_notes(header: str | None) -> dict[str, Any]:
    """`etag` (W/ and quotes stripped) and, when it is all digits, `export_time` (s or ms)."""
    if not header:
        return {}
    value = header.strip()
    value = value[2:] if value.startswith("W/") else value
    value = value.strip('"')[:200]  # a note, not a place to store whatever a server sends
    notes: dict[str, Any] = {"etag": value}
    if value.isascii() and value.isdigit() and len(value) <= 16:  # seconds or ms of a plausible date only
        stamp = int(value)
        seconds = stamp / 1000 if stamp > 10**11 else stamp
        from datetime import timezone

        with contextlib.suppress(OverflowError, OSError, ValueError):  # no clock shows it: a plain note
            notes["export_time"] = datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")
    return notes


def error_text(body: bytes) -> str:
    """A plcm-error body as sent (parsed JSON or XML text), cut to 500 characters."""
    text = body.decode("utf-8", errors="replace").strip()
    with contextlib.suppress(*JSON_FAILURES, DataError):  # an error body nested too deep is shown as text
        text = json.dumps(read_json(text), ensure_ascii=False)
    return text[:500] or "(empty body)"


def raise_for(response: Response, what: str) -> None:
    """The error a non-2xx answer means on generate-cdrs and status (spec §4.1)."""
    status = response.status_code
    if status < 300:
        return
    body = error_text(response.content)
    if status == 401:
        raise AuthError(f"{what}: HTTP 401 (user name or password rejected)", "check `username` and `password`")
    if status == 403:
        raise AuthError(f"{what}: HTTP 403 (the user may not export CDRs)", ROLE_HINT)
    if status in (404, 405, 501):
        raise ConfigError(f"{what}: HTTP {status} (no billing export resource here)", LEGACY_HINT)
    if status in (406, 415):
        raise DataError(f"{what}: HTTP {status} (media type refused): {body}", "please report this DMA version")
    if status == 400:
        raise DataError(
            f"{what}: HTTP 400 (request rejected): {body}", "check the window; please report if it persists"
        )
    raise UnavailableError(f"{what}: HTTP {status}: {body}", "see the DMA's logs")
