"""Polycom DMA CDR export: the zip's members -> `calls` and `conferences` rows.

Members are classified by content, never by name: CSV rows are routed by their `type` cell
(`CALL`, `CONF`), and the one-line member that is not such a row is the counts line. Column names
come from a header row when the member has one (first cell `version`), else from the positions
Poly documents (8 call columns, 15 conference columns).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, BinaryIO

from cdrfetch import archive
from cdrfetch.errors import DataError
from cdrfetch.records import extra_json

if TYPE_CHECKING:  # pyarrow is imported only when a member is parsed
    import pyarrow as pa

CALL_COLUMNS = ("version", "type", "callType", "callUuid", "dialin", "startTime", "endTime", "origEndpoint")
CONF_COLUMNS = (
    "version",
    "type",
    "confType",
    "cluster",
    "confUUID",
    "startTime",
    "endTime",
    "userID",
    "roomID",
    "partCount",
    "classOfService",
    "userDataA",
    "userDataB",
    "userDataC",
    "maxResourcesUsed",
)
# Source columns copied into a normalized column (the rest go to `extra`).
CALL_MAPPED = {"callType", "callUuid", "startTime", "endTime", "origEndpoint", "destEndpoint", "failureSignalingCode"}
CONF_MAPPED = {"confType", "cluster", "confUUID", "startTime", "endTime", "userID", "roomID", "classOfService"}
_TIME = re.compile(r"^(-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")
_NO_CLUSTER = {"", "none", "0", "-"}
COUNTS_MAX_BYTES = 64 << 10  # a member this small may be the one-line counts member


@dataclass
class Export:
    """Everything one export zip held, after the to-date filter."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    conferences: list[dict[str, Any]] = field(default_factory=list)
    counts_line: str | None = None
    rows_in_file: dict[str, int] = field(default_factory=lambda: {"CALL": 0, "CONF": 0})
    unknown_types: dict[str, int] = field(default_factory=dict)
    after_window: int = 0  # rows starting at or after the chunk end (they belong to the next window)
    warnings: list[str] = field(default_factory=list)


def parse_time(text: str) -> tuple[datetime, bool]:
    """xs:dateTime with its own offset -> (UTC instant truncated to ms, had an offset)."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(text)
    base, fraction, offset = match.groups()
    micros = ((fraction or "") + "000000")[:6]
    zone = "+00:00" if offset in (None, "Z") else offset
    if len(zone) == 5:  # +hhmm
        zone = f"{zone[:3]}:{zone[3:]}"
    value = datetime.fromisoformat(f"{base}.{micros}{zone}").astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000), offset is not None


def utc_text(value: datetime) -> str:
    """The project's UTC text form: `Z`, `.fff` only when the milliseconds are non-zero."""
    millis = value.microsecond // 1000
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}" if millis else "") + "Z"


def floor_seconds(start: datetime, end: datetime | None) -> int | None:
    """`floor(end - start)` in whole seconds; None without an end."""
    return None if end is None else math.floor((end - start) / timedelta(seconds=1))


class ExportParser:
    """Parses the members of one export for one chunk; rows land in `self.export`."""

    def __init__(self, *, account: str, chunk_end: datetime, columnwise: bool = True) -> None:
        self.account = account
        self.chunk_end = chunk_end
        self.columnwise = columnwise
        self.export = Export()

    def member(self, name: str, handle: BinaryIO) -> Iterator[pa.Table]:
        """Classify one member (a seekable binary file) by content and parse it.

        Yields the calls read column-wise, a block at a time; rows read one by one (irregular
        members, conferences) land in `self.export` instead.
        """
        from cdrfetch.providers.polycom import blocks

        start = handle.tell()
        head = handle.read(COUNTS_MAX_BYTES)
        if name.lower().endswith(".txt"):
            text, _ = archive.decode(head + handle.read(), name)
            self.export.counts_line = " ".join(line.strip() for line in text.splitlines() if line.strip())
            return
        if len(head) < COUNTS_MAX_BYTES and self._counts_line(head.removeprefix(codecs.BOM_UTF8)):
            return
        handle.seek(start + (len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0))
        if not self.columnwise:
            rest: blocks.Leftover | None = blocks.Leftover(handle.read(), 0, None)
        else:
            reader = blocks.CallsReader(handle, account=self.account, chunk_end=self.chunk_end)
            yield from reader.tables()
            self.export.rows_in_file["CALL"] += reader.rows
            self.export.after_window += reader.after_window
            rest = reader.leftover
        if rest is not None:
            text, encoding = archive.decode(rest.data, name)
            if encoding == "gbk":
                self.export.warnings.append(f"{name} is not UTF-8; read as GBK")
            _Member(self, name, header=rest.header, first_line=rest.line).parse(text)

    def _counts_line(self, data: bytes) -> bool:
        """Whether a small member is the counts line (then it is kept in `self.export`)."""
        try:
            stripped = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            return False
        if not stripped or "\n" in stripped or "\r" in stripped or not _is_counts_line(stripped):
            return False
        self.export.counts_line = stripped
        return True

    def check_counts(self) -> tuple[list[str], list[str]]:
        """Warnings from the counts line, and the excluded clusters it lists."""
        line = self.export.counts_line
        if line is None:
            return ["the export has no counts line"], []
        warnings: list[str] = []
        numbers = [int(n) for n in re.findall(r"\b\d+\b", line)]
        parsed = (self.export.rows_in_file["CALL"], self.export.rows_in_file["CONF"])
        if len(numbers) >= 2 and tuple(numbers[:2]) != parsed:
            warnings.append(f"counts line says {numbers[0]} calls / {numbers[1]} conferences, the files hold {parsed}")
        return warnings, excluded_clusters(line)


def excluded_clusters(line: str) -> list[str]:
    """The clusters the counts line lists as excluded (unreachable when the export ran)."""
    match = re.search(r"(?i)exclu\w*(?:\s+clusters?)?\s*[:=]?\s*(.*)$", line)
    if not match:
        return []
    names = [n for n in re.split(r"[;,|\s]+", match.group(1)) if n]
    return [] if all(n.lower() in _NO_CLUSTER for n in names) else names


def _is_counts_line(line: str) -> bool:
    """Neither a CALL/CONF row nor a header row (a member may hold a header and no rows)."""
    cells = next(csv.reader([line]), [])
    record = len(cells) > 1 and cells[1].strip().upper() in ("CALL", "CONF")
    return not record and cells[0].strip().lower() != "version"


class _Member:
    """One CSV member: header detection, then one row at a time."""

    def __init__(self, parser: ExportParser, name: str, *, header: list[str] | None, first_line: int) -> None:
        """`header`: column names already known; `first_line`: lines of the member before the text."""
        self.parser = parser
        self.export = parser.export
        self.name = name
        self.header = header
        self.first_line = first_line
        self.naive_warned = False

    def parse(self, text: str) -> None:
        """Every row of the member, in order; header rows switch the column names."""
        reader = csv.reader(io.StringIO(text, newline=""))
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if cells[0].strip().lower() == "version":
                self.header = [cell.strip() for cell in cells]
                continue
            self.row(self.first_line + reader.line_num, cells)

    def row(self, number: int, cells: list[str]) -> None:
        """Route one row by its `type` cell; a bad mandatory value names this member and line."""
        kind = cells[1].strip().upper() if len(cells) > 1 else ""
        if kind not in ("CALL", "CONF"):
            self.export.unknown_types[kind or "<empty>"] = self.export.unknown_types.get(kind or "<empty>", 0) + 1
            return
        self.export.rows_in_file[kind] += 1
        fields = self.fields(cells, CALL_COLUMNS if kind == "CALL" else CONF_COLUMNS)
        try:
            record = _call(self, fields) if kind == "CALL" else _conference(self, fields)
        except _RowError as error:
            raise DataError(
                f"polycom export member {self.name} line {number}: {error}",
                "the DMA sent a record this version of cdrfetch cannot read; please report it",
            ) from None
        if record["start_time"] >= self.parser.chunk_end:
            self.export.after_window += 1
            return
        (self.export.calls if kind == "CALL" else self.export.conferences).append(record)

    def fields(self, cells: list[str], positional: tuple[str, ...]) -> dict[str, str]:
        """Cells by column name; extra trailing cells become `col_N`, missing ones are absent."""
        names = self.header or list(positional)
        return {(names[i] if i < len(names) else f"col_{i + 1}"): cell for i, cell in enumerate(cells)}

    def time(self, fields: Mapping[str, str], name: str, *, mandatory: bool) -> datetime | None:
        """A time cell in UTC (element 0 of an ITP list); None when empty and optional."""
        raw = _first(_get(fields, name))
        if not raw.strip():
            if mandatory:
                raise _RowError(f"{name} is empty")
            return None
        try:
            value, had_offset = parse_time(raw)
        except ValueError:
            raise _RowError(f"{name} {raw!r} is not an ISO-8601 time") from None
        if not had_offset and not self.naive_warned:
            self.naive_warned = True
            self.export.warnings.append(f"{self.name}: times without a UTC offset, read as UTC")
        return value


class _RowError(Exception):
    """A mandatory value is missing or unreadable (the member adds file and line)."""


def _get(fields: Mapping[str, str], name: str) -> str:
    """A cell by column name, compared case-insensitively ('' when absent)."""
    if name in fields:
        return fields[name]
    lowered = name.lower()
    return next((value for key, value in fields.items() if key.lower() == lowered), "")


def _first(value: str) -> str:
    """Element 0 of an ITP per-codec list (the primary codec); the value itself otherwise."""
    return value.split(",", 1)[0].strip() if "," in value else value


def _same(value: str) -> str:
    return value


def _has(fields: Mapping[str, str], name: str) -> bool:
    return any(key.lower() == name.lower() for key in fields)


def _extra(fields: Mapping[str, str], mapped: set[str], itp: bool) -> dict[str, Any]:
    """Every non-empty unmapped cell under its own name; ITP lists raw, mapped ones included."""
    lowered = {name.lower() for name in mapped}
    extra: dict[str, Any] = {}
    for name, value in fields.items():
        if value.strip() and (name.lower() not in lowered or (itp and "," in value)):
            extra[name] = value
    return extra


def _optional(value: str) -> str | None:
    return value if value.strip() else None


def _call(member: _Member, fields: dict[str, str]) -> dict[str, Any]:
    uuid = _first(_get(fields, "callUuid"))
    if not uuid.strip():
        raise _RowError("callUuid is empty")
    itp = "," in _get(fields, "callUuid") or "," in _get(fields, "startTime")
    start = member.time(fields, "startTime", mandatory=True)
    assert start is not None
    end = member.time(fields, "endTime", mandatory=False)
    extra = _extra(fields, CALL_MAPPED, itp)
    if itp:
        extra["itp_codecs"] = len(_get(fields, "callUuid").split(","))
    pick = _first if itp else _same
    return {
        "provider": "polycom",
        "account": member.parser.account,
        "record_id": f"{uuid}:{utc_text(start)}",
        "call_id": uuid,
        "start_time": start,
        "end_time": end,
        "duration_s": _duration(member, start, end, uuid),
        "billed_duration_s": None,
        "caller": _optional(pick(_get(fields, "origEndpoint"))),
        "callee": _optional(pick(_get(fields, "destEndpoint"))) if _has(fields, "destEndpoint") else None,
        "direction": "inbound" if pick(_get(fields, "dialin")).strip().upper() == "TRUE" else "unknown",
        "call_type": _optional(_get(fields, "callType")),
        "status": _optional(pick(_get(fields, "failureSignalingCode"))),
        "extra": extra_json(extra),
    }


def _duration(member: _Member, start: datetime, end: datetime | None, what: str) -> int | None:
    seconds = floor_seconds(start, end)
    if seconds is not None and seconds < 0:
        member.export.warnings.append(f"{member.name}: {what} ends before it starts; duration left empty")
        return None
    return seconds


def _conference(member: _Member, fields: dict[str, str]) -> dict[str, Any]:
    conf_id = _first(_get(fields, "confUUID"))
    if not conf_id.strip():
        raise _RowError("confUUID is empty")
    itp = "," in _get(fields, "confUUID") or "," in _get(fields, "startTime")
    start = member.time(fields, "startTime", mandatory=True)
    assert start is not None
    end = member.time(fields, "endTime", mandatory=False)
    extra = _extra(fields, CONF_MAPPED, itp)
    pick = _first if itp else _same
    count = pick(_get(fields, "partCount")).strip()
    if count.isdigit():
        extra.pop(next((k for k in extra if k.lower() == "partcount"), ""), None)
    return {
        "provider": "polycom",
        "account": member.parser.account,
        "record_id": conf_id,
        "start_time": start,
        "end_time": end,
        "conf_id": conf_id,
        "conf_type": _optional(_get(fields, "confType")),
        "cluster": _optional(pick(_get(fields, "cluster"))),
        "owner": _optional(pick(_get(fields, "userID"))),
        "room_id": _optional(pick(_get(fields, "roomID"))),
        "max_participants": int(count) if count.isdigit() else None,
        "class_of_service": _optional(pick(_get(fields, "classOfService"))),
        "duration_s": _duration(member, start, end, conf_id),
        "extra": extra_json(extra),
    }


def iter_tables(export: Export) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(table, rows) for each output table."""
    yield "calls", export.calls
    yield "conferences", export.conferences
