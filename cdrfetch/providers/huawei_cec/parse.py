"""CC-FS `_call` / `_record` CSV members -> normalized `calls` / `recordings` batches, column-wise.

Members are read with Arrow's streaming CSV reader (every cell as text) and normalized a whole
block at a time with pyarrow.compute, so a million-row export takes seconds and flat memory.
Rows whose width differs from the first row (short or long rows) take a slower per-row path
through the same normalization. Columns are mapped by position (spec §5.3/§5.4); a header row is
recognised by its first cell `developer` and skipped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from cdrfetch import archive, records
from cdrfetch.errors import DataError
from cdrfetch.providers.huawei_cec import columns as cols
from cdrfetch.tabular import prefetched, rebatch
from cdrfetch.untrusted import csv_errors

PROVIDER = "huawei-cec"
BLOCK_BYTES = 1 << 20  # Arrow reads ahead dozens of blocks; 1 MiB keeps that to tens of MiB
_MEMBER = re.compile(r"^(?P<stem>.*_(?P<kind>call|record))(?:_(?P<part>\d+))?\.csv$", re.IGNORECASE)


@dataclass
class Context:
    """What normalization needs besides the cells: the account, the zone and a warning sink."""

    account: str
    zone: tzinfo
    warn: Callable[[str], None]


def member_kind(name: str) -> tuple[str, tuple[str, int]] | None:
    """`calls` or `recordings` and a sort key (parts numerically), or None for other members."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _MEMBER.match(base)
    if match is None:
        return None
    table = "calls" if match["kind"].lower() == "call" else "recordings"
    return table, (match["stem"].lower(), int(match["part"] or 0))


def parse_members(members: Sequence[archive.Member], ctx: Context) -> Iterator[records.Batch]:
    """Every `_call*` member into `calls`, every `_record*` member into `recordings`, parts in order."""
    chosen = sorted(
        ((kind, member) for member in members if (kind := member_kind(member.name)) is not None),
        key=lambda item: (item[0][0], item[0][1]),
    )
    for (table, _), member in chosen:
        for batch in parse_member(member, table, ctx):
            yield records.Batch(table, batch)


def parse_member(member: archive.Member, table: str, ctx: Context) -> Iterator[pa.RecordBatch]:
    """Normalized record batches of one member (`table` is calls or recordings)."""
    spec = cols.CALL if table == "calls" else cols.RECORD
    encoding = "utf-8" if _ascii(member.path) else archive.detect_encoding(member.path, member.name)
    if encoding == "gbk":
        ctx.warn(f"{member.name}: not UTF-8, read as GBK")
    layout = _layout(member, encoding, spec, ctx)
    if layout is None:
        return
    odd: list[tuple[int | None, str]] = []
    blocks = rebatch(_open(member.path, encoding, layout, odd))

    def step() -> pa.RecordBatch | None:  # read and normalize the next block while the last is written
        block = next(blocks, None)
        if block is None:
            return None
        return _normalize(member, spec, ctx, dict(zip(layout.names, block.columns, strict=True)), block.num_rows)

    yield from prefetched(step)
    yield from _odd_rows(member, spec, ctx, layout, odd)  # `odd` is complete once every block was read


def _ascii(path: Path) -> bool:
    """Whether the file is plain ASCII, so UTF-8 without a BOM (a scan many times faster than decoding)."""
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            if not block.isascii():
                return False
    return True


@dataclass(frozen=True)
class Layout:
    """Column names of a member (positional names, then extras) and the rows before the data."""

    names: list[str]
    skip: int


def _layout(member: archive.Member, encoding: str, spec: cols.Table, ctx: Context) -> Layout | None:
    with open(member.path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        first, skip, more = None, 0, False
        with csv_errors(lambda: f"{member.name}: line {reader.line_num}"):
            for row in reader:
                if first is None:
                    skip = reader.line_num
                    first = row if any(cell for cell in row) else None
                elif any(cell for cell in row):
                    more = True  # a row after the first: there is something to read
                    break
    if first is None:
        return None  # an empty member holds no rows
    header = first[0].lstrip("\ufeff").strip().lower() == "developer"
    if header and not more:
        return None  # only a header (Arrow cannot skip it when it lacks a line end)
    if header and [c.strip().lower() for c in first[: len(spec.names)]] != list(spec.names[: len(first)]):
        ctx.warn(f"{member.name}: header names differ from the documented columns; mapping by position")
    names = spec.extend(first if header else [], len(first))
    return Layout(names, skip if header else 0)  # Arrow skips physical lines; it drops blank ones itself


def _open(path: Path, encoding: str, layout: Layout, odd: list[tuple[int | None, str]]) -> pcsv.CSVStreamingReader:
    def keep_aside(row: pcsv.InvalidRow) -> str:
        odd.append((row.number, row.text))
        return "skip"

    return pcsv.open_csv(
        path,
        read_options=pcsv.ReadOptions(
            column_names=layout.names, skip_rows=layout.skip, encoding=encoding, block_size=BLOCK_BYTES
        ),
        parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=keep_aside),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in layout.names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _odd_rows(
    member: archive.Member, spec: cols.Table, ctx: Context, layout: Layout, odd: list[tuple[int | None, str]]
) -> Iterator[pa.RecordBatch]:
    """Rows narrower or wider than the first row: padded with nulls or extended with extra columns."""
    by_width: dict[int, list[list[str]]] = {}
    with csv_errors(lambda: f"{member.name}: line {_refused_line(member)}"):
        for row in csv.reader(text for _, text in odd):
            by_width.setdefault(len(row), []).append(row)
    for width, rows in sorted(by_width.items()):
        names = layout.names[:width] + spec.extend([], width)[len(layout.names) :]
        columns = {name: pa.array([row[i] for row in rows], pa.string()) for i, name in enumerate(names)}
        yield _normalize(member, spec, ctx, columns, len(rows))


def _normalize(
    member: archive.Member, spec: cols.Table, ctx: Context, columns: dict[str, pa.Array], rows: int
) -> pa.RecordBatch:
    """One block of raw text columns -> one normalized batch (errors name the member and line)."""
    try:
        return spec.normalize(columns, rows, ctx.account, ctx.zone, ctx.warn, member.name)
    except cols.BadRow as bad:
        line = _locate(member, spec, ctx, bad)
        where = f"line {line}" if line else "a row"
        raise DataError(f"{member.name}: {where}: {bad.reason}", "the export is damaged; run again") from None


def _refused_line(member: archive.Member) -> int | str:
    """The line where the csv module refuses the member (read again, only on error: Arrow's rows
    carry no line numbers when values may span lines)."""
    with open(member.path, encoding=archive.detect_encoding(member.path, member.name), newline="") as handle:
        reader = csv.reader(handle)
        try:
            for _ in reader:
                pass
        except csv.Error:
            return reader.line_num
    return "?"


def _locate(member: archive.Member, spec: cols.Table, ctx: Context, bad: cols.BadRow) -> int | None:
    """The physical line of the first row failing the same check (read again, only on error)."""
    encoding = archive.detect_encoding(member.path, member.name)
    with open(member.path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        with csv_errors(lambda: f"{member.name}: line {reader.line_num}"):
            for row in reader:
                if row and row[0].lstrip("\ufeff").strip().lower() != "developer" and bad.check(row, ctx.zone):
                    return reader.line_num
    return None
