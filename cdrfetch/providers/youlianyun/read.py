"""Youlianyun bill files -> raw cells: sniffing, two readers that yield the same blocks, cell values.

The fast reader is Arrow's CSV reader (regular files); the exact one is the csv module, with line
numbers, and it takes over from the first block the fast path cannot handle (ragged rows, odd
stamps) so that every bad row is named by its line. Stamps and durations are read from the cells
here, and an unreadable one is a DataError naming its line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cdrfetch import archive
from cdrfetch.errors import DataError
from cdrfetch.records import BATCH_ROWS, MAX_SECONDS
from cdrfetch.tabular import Irregular, blank_to_null, within_range
from cdrfetch.untrusted import csv_errors, shown

FIELDS = ("ClientId", "Callee", "startTime", "duration", "type")
ALIASES = {"clientid": "ClientId", "fromclient": "ClientId", "callee": "Callee", "to": "Callee"}
ALIASES |= {"starttime": "startTime", "duration": "duration", "type": "type"}
KNOWN = {*ALIASES, "bill"}
_ARROW_BLOCK = 1 << 22  # bytes per Arrow CSV block (~60k rows of a typical bill file)
_STAMP = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?")
_DURATION = re.compile(r"0*\d{1,12}(?:\.0*)?")  # MAX_SECONDS has 12 digits
DAMAGED = "the bill file is damaged or in an unknown layout"


@dataclass(frozen=True)
class Layout:
    """What sniffing found out about one member: encoding, delimiter, header, column names."""

    encoding: str
    delimiter: str
    columns: tuple[str, ...]  # canonical names (FIELDS) or extra names, in file order
    header: bool
    regular: bool  # the first line is the first non-blank line (the fast reader can start)


@dataclass
class RawBlock:
    """Trimmed raw cells of consecutive data rows (non-null strings), with line numbers if known."""

    cells: dict[str, pa.Array]
    extras: list[tuple[str, pa.Array]]
    lines: list[int] | None


def sniff_layout(path: Path, name: str) -> Layout:
    """Encoding, delimiter and header of a decoded bill member (spec §5.2 rules 4, 6 and 8)."""
    encoding = archive.detect_encoding(path, name)
    with open(path, encoding=encoding, newline="") as handle:
        head = archive.head_lines(handle)
    if not head:
        return Layout(encoding, ",", FIELDS, False, True)
    with open(path, encoding=encoding, newline="") as handle:
        regular = handle.readline() == head[0]
    with csv_errors(lambda: f"{name}: the first {len(head)} lines"):
        delimiter = archive.sniff_delimiter(head, min_fields=5, header_names=KNOWN, name=name)
        names = [cell.strip() for cell in next(csv.reader(head[:1], delimiter=delimiter))]
    if sum(cell.lower() in KNOWN for cell in names) >= 2:
        return Layout(encoding, delimiter, tuple(ALIASES.get(c.lower(), c) for c in names), True, regular)
    return Layout(encoding, delimiter, _positional(len(names)), False, regular)


def _positional(count: int) -> tuple[str, ...]:
    return FIELDS[:count] + tuple(f"col_{i}" for i in range(6, count + 1))


def arrow_blocks(path: Path, layout: Layout) -> Iterator[RawBlock]:
    """Raw blocks by Arrow's CSV reader; raises Irregular where the exact reader must take over."""
    names = [f"c{i}" for i in range(len(layout.columns))]
    encoding = "utf8" if layout.encoding.startswith("utf-8") else layout.encoding  # Arrow skips a BOM itself
    read = pacsv.ReadOptions(
        use_threads=False, column_names=names, skip_rows=int(layout.header), block_size=_ARROW_BLOCK, encoding=encoding
    )
    parse = pacsv.ParseOptions(delimiter=layout.delimiter, invalid_row_handler=_only_blank_rows)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    try:
        # a Python file object keeps Arrow from reading the whole file ahead (flat memory)
        with open(path, "rb") as source, pacsv.open_csv(source, read, parse, convert) as reader:
            for batch in reader:
                yield _raw(layout, [pc.utf8_trim_whitespace(column) for column in batch.columns], None)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        raise Irregular from None


def _only_blank_rows(row: Any) -> str:
    """Arrow's handler for rows with the wrong cell count: skip blank lines, give up otherwise."""
    return "skip" if not (row.text or "").strip() else "error"


def _raw(layout: Layout, columns: list[pa.Array], lines: list[int] | None) -> RawBlock:
    named = dict(zip(layout.columns, columns, strict=False))
    length = len(columns[0]) if columns else 0
    cells = {f: named.get(f, pa.repeat(pa.scalar(""), length)) for f in FIELDS}
    extras = [(n, c) for n, c in named.items() if n not in FIELDS]
    return RawBlock(cells, extras, lines)


def python_blocks(path: Path, layout: Layout, skip: int, name: str) -> Iterator[RawBlock]:
    """Raw blocks of BATCH_ROWS rows with line numbers, after skipping `skip` data rows."""
    width = len(layout.columns)
    rows: list[list[str]] = []
    lines: list[int] = []
    header_pending = layout.header
    with open(path, encoding=layout.encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        with csv_errors(lambda: f"{name}: line {reader.line_num}"):
            for row in reader:
                if _blank(row, layout.delimiter):
                    continue
                if header_pending:
                    header_pending = False
                    continue
                if skip:
                    skip -= 1
                    continue
                if len(row) > width:
                    raise DataError(
                        f"{name}: line {reader.line_num}: {len(row)} cells where the first row has {width}", DAMAGED
                    )
                rows.append([cell.strip() for cell in row] + [""] * (width - len(row)))
                lines.append(reader.line_num)
                if len(rows) == BATCH_ROWS:
                    yield _raw(layout, [pa.array(col, pa.string()) for col in zip(*rows, strict=False)], lines)
                    rows, lines = [], []
    if rows:
        yield _raw(layout, [pa.array(col, pa.string()) for col in zip(*rows, strict=False)], lines)


def _blank(row: list[str], delimiter: str) -> bool:
    """A blank or whitespace-only line (a tab-only line is whitespace too)."""
    return not "".join(row).strip() and (len(row) <= 1 or delimiter.isspace())


def first(mask: pa.Array) -> int:
    """The row of the first True."""
    return int(pc.index(mask, True).as_py())


def where(lines: list[int] | None, row: int, name: str) -> str:
    """`name: line N` of a block's row; Irregular when the block has no line numbers (the fast reader)."""
    if lines is None:
        raise Irregular  # the exact reader will say which line
    return f"{name}: line {lines[row]}"


def _strict(text: pa.Array, naive: pa.Array) -> pa.Array:
    """Keep only values that are exactly what the text says (null the rest for the exact parser).

    Arrow's strptime rolls impossible dates over (Feb 30 -> Mar 2, second 60 -> next minute), so
    the day and second of each zero-padded stamp are compared with its text; other forms go the
    exact way.
    """
    try:
        same_day = pc.equal(pc.cast(pc.utf8_slice_codeunits(text, 8, 10), pa.int64()), pc.day(naive))
        same_second = pc.equal(pc.cast(pc.utf8_slice_codeunits(text, 17, 19), pa.int64()), pc.second(naive))
    except (pa.ArrowInvalid, ValueError):
        return pa.nulls(len(text), naive.type)
    exact = pc.and_kleene(pc.equal(pc.utf8_length(text), 19), pc.and_kleene(same_day, same_second))
    return pc.if_else(pc.fill_null(exact, False), naive, pa.scalar(None, naive.type))


def naive_stamps(text: pa.Array, lines: list[int] | None, name: str) -> pa.Array:
    """startTime cells -> naive timestamp[ms]; an unreadable one raises DataError naming its line."""
    naive = _strict(text, pc.strptime(text, format="%Y-%m-%d %H:%M:%S", unit="ms", error_is_null=True))
    naive = within_range(naive)  # Arrow reads year 0, which the Python patching below cannot hold
    return _patch_stamps(text, naive, lines, name) if naive.null_count else naive


def _patch_stamps(text: pa.Array, naive: pa.Array, lines: list[int] | None, name: str) -> pa.Array:
    """Parse what strptime could not (no padding, '/', 'T', fractions) or fail naming the line."""
    values = naive.to_pylist()
    for row, (cell, value) in enumerate(zip(text.to_pylist(), values, strict=False)):
        if value is None:
            values[row] = _stamp(cell, lines, row, name)
    return pa.array(values, pa.timestamp("ms"))


def _stamp(cell: str, lines: list[int] | None, row: int, name: str) -> datetime:
    match = _STAMP.fullmatch(cell)
    try:
        if match is None:
            raise ValueError(cell)
        year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        micro = int((match.group(7) or "0").ljust(6, "0")[:3]) * 1000  # truncated to milliseconds
        return datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        raise DataError(
            f"{where(lines, row, name)}: startTime {shown(cell)} is missing or not a date and time",
            f"expected yyyy-MM-dd HH:mm:ss; {DAMAGED}",
        ) from None


def durations(text: pa.Array, lines: list[int] | None, name: str) -> pa.Array:
    """Whole seconds up to MAX_SECONDS; empty -> null; '35.0' accepted; anything else -> DataError."""
    cells = blank_to_null(text)
    try:
        values = pc.cast(cells, pa.int64())
        extremes = pc.min_max(values)
        if (extremes["min"].as_py() or 0) >= 0 and (extremes["max"].as_py() or 0) <= MAX_SECONDS:
            return values
    except (pa.ArrowInvalid, ValueError):
        pass
    return pa.array([_seconds(cell, lines, row, name) for row, cell in enumerate(cells.to_pylist())], pa.int64())


def _seconds(cell: str | None, lines: list[int] | None, row: int, name: str) -> int | None:
    if cell is None:
        return None
    if _DURATION.fullmatch(cell) and (seconds := int(cell.split(".")[0])) <= MAX_SECONDS:
        return seconds
    raise DataError(
        f"{where(lines, row, name)}: duration {shown(cell)} is not a number of seconds from 0 to {MAX_SECONDS}",
        DAMAGED,
    )
