"""Youlianyun bill files -> raw cells: sniffing, and two readers that yield the same blocks.

The fast reader is Arrow's CSV reader (regular files); the exact one is the csv module, with line
numbers, and it takes over from the first block the fast path cannot handle (ragged rows, odd
stamps) so that every bad row is named by its line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cdrfetch import archive
from cdrfetch.errors import DataError
from cdrfetch.records import BATCH_ROWS
from cdrfetch.tabular import Irregular

FIELDS = ("ClientId", "Callee", "startTime", "duration", "type")
ALIASES = {"clientid": "ClientId", "fromclient": "ClientId", "callee": "Callee", "to": "Callee"}
ALIASES |= {"starttime": "startTime", "duration": "duration", "type": "type"}
KNOWN = {*ALIASES, "bill"}
_ARROW_BLOCK = 1 << 22  # bytes per Arrow CSV block (~60k rows of a typical bill file)


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
    delimiter = archive.sniff_delimiter(head, min_fields=5, header_names=KNOWN, name=name)
    first = [cell.strip() for cell in next(csv.reader(head[:1], delimiter=delimiter))]
    if sum(cell.lower() in KNOWN for cell in first) >= 2:
        return Layout(encoding, delimiter, tuple(ALIASES.get(c.lower(), c) for c in first), True, regular)
    return Layout(encoding, delimiter, _positional(len(first)), False, regular)


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
                    f"{name}: line {reader.line_num}: {len(row)} cells where the first row has {width}",
                    "the bill file is damaged or in an unknown layout",
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
