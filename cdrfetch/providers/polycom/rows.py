"""Polycom DMA CDR export: the rows of one CSV member -> `calls` and `conferences` records.

A row is routed by its `type` cell; its cells are named by the member's header row when it has
one, else by the positions Poly documents. ITP rows carry per-codec lists: element 0 (the primary
codec) is the value, the raw lists go to `extra`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cdrfetch.errors import DataError
from cdrfetch.providers.polycom.parse import (
    CALL_COLUMNS,
    CALL_MAPPED,
    CONF_COLUMNS,
    CONF_MAPPED,
    ExportParser,
    floor_seconds,
    parse_time,
    utc_text,
)
from cdrfetch.untrusted import csv_errors, extra_json, shown

_COUNT = re.compile(r"[0-9]{1,18}")  # a participant count: int64, and ASCII (str.isdigit takes '²')


class Member:
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
        with csv_errors(lambda: f"polycom export member {self.name} line {self.first_line + reader.line_num}"):
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
            raise _RowError(f"{name} {shown(raw)} is not an ISO-8601 time") from None
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


def _call(member: Member, fields: dict[str, str]) -> dict[str, Any]:
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


def _duration(member: Member, start: datetime, end: datetime | None, what: str) -> int | None:
    seconds = floor_seconds(start, end)
    if seconds is not None and seconds < 0:
        member.export.warnings.append(f"{member.name}: {what} ends before it starts; duration left empty")
        return None
    return seconds


def _conference(member: Member, fields: dict[str, str]) -> dict[str, Any]:
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
    if _COUNT.fullmatch(count):
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
        "max_participants": int(count) if _COUNT.fullmatch(count) else None,
        "class_of_service": _optional(pick(_get(fields, "classOfService"))),
        "duration_s": _duration(member, start, end, conf_id),
        "extra": extra_json(extra),
    }
