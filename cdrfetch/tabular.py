"""The shared normalization kit: column-wise building blocks every provider parser uses.

Parsers normalize a block of rows at a time with Arrow kernels (no per-row Python work) and fall
back to an exact row-by-row parser, with true line numbers, from the first block the column-wise
path cannot vouch for: that path raises `Irregular`, and `columnwise_then_exact` switches over.
It also holds the guards every parser puts around input from servers we do not control: JSON
that nests past the stack, CSV fields past the csv module's limit, times past Python's years.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from cdrfetch.records import BATCH_ROWS, FIRST_INSTANT, LAST_INSTANT, UTC_MS

A = TypeVar("A")
B = TypeVar("B")
PART_MIN_ROWS = 50_000  # below this, splitting a table over threads costs more than it saves
_NULL = pa.scalar(None, pa.string())
_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f\\"]')


class Irregular(Exception):
    """The column-wise path met something only the exact row parser handles."""


def columnwise_then_exact(columnwise: Iterator[A], exact: Callable[[], Iterable[A]]) -> Iterator[A]:
    """Everything `columnwise` yields until it raises Irregular, then what `exact()` yields.

    `exact` resumes where the column-wise path stopped (the caller counts what was delivered).
    """
    try:
        yield from columnwise
    except Irregular:
        yield from exact()


def in_parallel(table: pa.Table, work: Callable[[pa.Table], B]) -> list[B]:
    """`work` over row ranges of `table`, one per core (Arrow's kernels release the GIL)."""
    size = max(PART_MIN_ROWS, -(-table.num_rows // (os.cpu_count() or 1)))
    parts = [table.slice(start, size) for start in range(0, table.num_rows, size)] or [table]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(work, parts))


def rebatch(batches: Iterable[pa.RecordBatch], rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """The same rows as batches of exactly `rows` rows (the last one may be shorter); empty ones dropped."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        while size >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            rest = table.slice(rows)
            pending, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def blank_to_null(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Empty cells as nulls (optional text fields)."""
    return pc.if_else(pc.equal(values, ""), _NULL, values)


def blank(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells that are empty or only whitespace (what `str.strip()` empties)."""
    return pc.or_(pc.equal(pc.utf8_length(values), 0), pc.utf8_is_space(values))


def arrow_zone(tz: tzinfo) -> str:
    """The zone as Arrow names it: `UTC`, an IANA key or a fixed `+HH:MM` offset."""
    key = getattr(tz, "key", None)
    if key:
        return str(key)
    offset = datetime(2000, 1, 1, tzinfo=tz).utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_to_utc(naive: pa.Array, tz: tzinfo) -> pa.Array:
    """Naive local times in `tz` -> timestamp[ms, UTC]; a repeated hour takes its first occurrence.

    Arrow refuses a time in a DST gap (and may lack a zone database): those blocks go the Python way,
    whose rule (fold=0) is the same for repeats and moves gap times forward. A time that is not an
    instant of records.FIRST_INSTANT..LAST_INSTANT once in UTC becomes null, as an unreadable one.
    """
    name = arrow_zone(tz)
    naive = within_range(naive)  # Arrow reads year 0, which Python cannot hold
    if name == "UTC":
        return naive.cast(UTC_MS)
    try:
        utc = pc.assume_timezone(naive, name, ambiguous="earliest", nonexistent="raise").cast(UTC_MS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return pa.array([None if t is None else utc_or_none(t, tz) for t in naive.to_pylist()], UTC_MS)
    return within_range(utc)


def utc_or_none(naive: datetime, tz: tzinfo) -> datetime | None:
    """A naive local time in `tz` as a UTC instant (fold=0); None when that falls outside the years 1-9999."""
    try:
        return naive.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    except OverflowError:
        return None


def within_range(instants: pa.Array) -> pa.Array:
    """Millisecond timestamps (naive or UTC) with those before FIRST_INSTANT or after LAST_INSTANT nulled."""
    aware = instants.type.tz is not None
    low = pa.scalar(FIRST_INSTANT if aware else FIRST_INSTANT.replace(tzinfo=None), instants.type)
    high = pa.scalar(LAST_INSTANT if aware else LAST_INSTANT.replace(tzinfo=None), instants.type)
    extremes = pc.min_max(instants)
    if not extremes["min"].is_valid or (extremes["min"].value >= low.value and extremes["max"].value <= high.value):
        return instants  # the usual case: one pass, nothing to change
    inside = pc.and_(pc.greater_equal(instants, low), pc.less_equal(instants, high))
    return pc.if_else(inside, instants, pa.scalar(None, instants.type))


def json_objects(members: Sequence[tuple[str, pa.Array | pa.ChunkedArray]], rows: int) -> Any:
    """Per row, the JSON object of the (name, text cells) members in order, null cells left out.

    The text is exactly what records.extra_json gives for the same fields, built in one string join:
    a member without nulls (the common case) joins in as literal pieces around the cells themselves,
    so no per-column string is built. The first such member anchors the commas: members before it
    carry a trailing comma, members after it a leading one, so an absent member (an empty piece)
    never leaves a stray comma.
    """
    pairs = []  # (key, pieces of the JSON value, presence mask or None when every cell is present)
    for name, cells in members:
        present = pc.is_valid(cells)
        if not pc.any(present).as_py():
            continue
        key = json.dumps(name, ensure_ascii=False) + ":"
        pairs.append((key, _json_strings(cells), None if pc.all(present).as_py() else present))
    if not pairs:  # as long as the members are (a caller's row count may count rows the members lack)
        return pa.repeat(pa.scalar("{}"), len(members[0][1]) if members else rows)
    anchor = next((i for i, (_, _, present) in enumerate(pairs) if present is None), None)
    if anchor is None:  # every member has absent cells: each brings its own leading comma, the first is cut
        items = [
            pc.if_else(present, pc.binary_join_element_wise(",", key, *value, ""), "") for key, value, present in pairs
        ]
        # not Arrow's null_handling="skip": it drops the rows where every value is null
        joined = items[0] if len(items) == 1 else pc.binary_join_element_wise(*items, "")
        return pc.binary_join_element_wise("{", pc.binary_replace_slice(joined, 0, 1, ""), "}", "")
    parts: list[Any] = ["{"]
    for i, (key, value, present) in enumerate(pairs):
        head, tail = ("," if i > anchor else "") + key, "," if i < anchor else ""
        if present is None:
            parts += [head, *value, tail]
        else:
            parts.append(pc.if_else(present, pc.binary_join_element_wise(head, *value, tail, ""), ""))
    return pc.binary_join_element_wise(*parts, "}", "")


def _json_strings(cells: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Pieces that join into each cell as a JSON string, escaped exactly like json.dumps(ensure_ascii=False)."""
    chunks = cells.chunks if isinstance(cells, pa.ChunkedArray) else [cells]
    # one C-speed scan of the character data; escaping is rare, so it takes the slow path
    if any(c.buffers()[2] is not None and _NEEDS_ESCAPE.search(memoryview(c.buffers()[2])) for c in chunks):
        return [pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in cells.to_pylist()])]
    return ['"', cells, '"']
