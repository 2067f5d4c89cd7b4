"""Polycom DMA CDR export: the zip's members -> `calls` and `conferences` rows.

Members are classified by content, never by name: CSV rows are routed by their `type` cell
(`CALL`, `CONF`), and the one-line member that is not such a row is the counts line. Column names
come from a header row when the member has one (first cell `version`), else from the positions
Poly documents (8 call columns, 15 conference columns).
"""

from __future__ import annotations

import codecs
import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, BinaryIO

from cdrfetch import archive

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
    try:
        value = datetime.fromisoformat(f"{base}.{micros}{zone}").astimezone(timezone.utc)
    except OverflowError:  # years 1-9999 with an offset that takes them past the range in UTC
        raise ValueError(text) from None
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
        # Imported here: both build on this module (its columns, its time parsing), and blocks needs pyarrow.
        from cdrfetch.providers.polycom import blocks, rows

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
            rows.Member(self, name, header=rest.header, first_line=rest.line).parse(text)

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
        numbers = re.findall(r"\b\d+\b", line)[:2]
        parsed = (self.export.rows_in_file["CALL"], self.export.rows_in_file["CONF"])
        # int() refuses more than 4300 digits; a count that long matches no file anyway
        if len(numbers) == 2 and tuple(int(n) if len(n) <= 4300 else None for n in numbers) != parsed:
            said = [n if len(n) <= 20 else f"{n[:20]}..." for n in numbers]
            warnings.append(f"counts line says {said[0]} calls / {said[1]} conferences, the files hold {parsed}")
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
