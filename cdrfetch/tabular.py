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
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdrfetch.records import BATCH_ROWS, FIRST_INSTANT, LAST_INSTANT, UTC_MS

A = TypeVar("A")
B = TypeVar("B")
PART_MIN_ROWS = 50_000  # below this, splitting a table over threads costs more than it saves


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


def prefetched(step: Callable[[], B | None]) -> Iterator[B]:
    """What `step()` returns until it returns None, each computed in the background while the
    caller handles the one before (Arrow's kernels release the GIL, so both cores work).

    Calls of `step` run one at a time, in order, in one thread; the next starts only after the
    previous result was handed out, so an error surfaces after everything before it.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="prefetch") as pool:
        pending = pool.submit(step)
        while (item := pending.result()) is not None:
            pending = pool.submit(step)
            yield item


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
    return null_where(values, pc.equal(values, ""))


def blank(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells that are empty or only whitespace (what `str.strip()` empties)."""
    empty = pc.equal(values, "")
    return pc.or_(empty, pc.utf8_is_space(values)) if may_hold_space(values) else empty


def may_hold_space(values: pa.Array | pa.ChunkedArray) -> bool:
    """False when no cell can hold whitespace: the text has no byte <= 0x20 (ASCII space and
    controls) and none >= 0x80 (where the other Unicode spaces live). One C-speed scan."""
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        data = chunk.buffers()[2] if chunk.type == pa.string() else None
        if chunk.type != pa.string() or (data is not None and data.size and not _plain_ascii(data)):
            return True
    return False


def _plain_ascii(data: pa.Buffer) -> bool:
    codes = np.frombuffer(data, np.uint8)
    return bool(codes.min() > 0x20 and codes.max() < 0x80)


def null_where(values: pa.Array | pa.ChunkedArray, mask: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`values` with nulls where `mask` is true, as `pc.if_else(mask, None, values)` gives them.

    Only a new validity bitmap is built: the offsets and character data are shared with `values`
    (the cells under a null keep their bytes, which nothing reads), instead of copying every cell.
    """
    if isinstance(values, pa.ChunkedArray) and isinstance(mask, pa.ChunkedArray):
        if [len(c) for c in values.chunks] == [len(c) for c in mask.chunks]:
            chunks = [_null_where(v, m) for v, m in zip(values.chunks, mask.chunks, strict=True)]
            return pa.chunked_array(chunks, values.type)
    elif isinstance(values, pa.Array) and isinstance(mask, pa.Array):
        return _null_where(values, mask)
    return pc.if_else(mask, pa.scalar(None, values.type), values)


def _null_where(values: pa.Array, mask: pa.Array) -> pa.Array:
    if values.type != pa.string() or values.offset or mask.offset:  # bitmaps would not line up
        return pc.if_else(mask, pa.scalar(None, values.type), values)
    keep = pc.invert(mask)
    if values.null_count:  # a null cell stays null
        keep = pc.and_(keep, pc.is_valid(values))
    if keep.null_count:  # so does a cell under a null in the mask, as in if_else
        keep = pc.fill_null(keep, False)
    if keep.offset:
        return pc.if_else(mask, pa.scalar(None, values.type), values)
    return pa.Array.from_buffers(pa.string(), len(values), [keep.buffers()[1], *values.buffers()[1:]])


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

    The text is exactly what records.extra_json gives for the same fields, built in one string join
    of literal pieces and cells: a member without nulls joins in as its cells between literals, a
    member with nulls as one piece per row that is null where the cell is (the join skips those).
    The first member without nulls anchors the commas: members before it carry a trailing comma,
    members after it a leading one, so a skipped piece never leaves a stray comma. Without such a
    member, every piece leads with a comma and the one after the brace is cut.
    """
    pairs = []  # (key, pieces of the JSON value, whether every cell is present)
    for name, cells in members:
        if cells.null_count == len(cells):
            continue
        key, full = json.dumps(name, ensure_ascii=False) + ":", cells.null_count == 0
        pairs.append((key, [_constant(cells)] if full and _is_constant(cells) else _json_strings(cells), full))
    if not pairs:  # as long as the members are (a caller's row count may count rows the members lack)
        return pa.repeat(pa.scalar("{}"), len(members[0][1]) if members else rows)
    anchor = next((i for i, (_, _, full) in enumerate(pairs) if full), None)
    parts: list[Any] = ["{"]
    for i, (key, value, full) in enumerate(pairs):
        head = ("," if anchor is None or i > anchor else "") + key
        tail = "," if anchor is not None and i < anchor else ""
        # a member with nulls: its piece is null on those rows (the default null handling)
        parts += [head, *value, tail] if full else [pc.binary_join_element_wise(head, *value, tail, "")]
    parts.append("}")
    # The literal braces keep every row non-null: Arrow's "skip" drops rows where every value is null.
    parts = _literals_merged(parts)
    if len(parts) == 1:  # every member is constant (so none has nulls): the join would give one scalar
        return pa.repeat(pa.scalar(parts[0]), len(members[0][1]))
    joined = pc.binary_join_element_wise(*parts, "", null_handling="skip")
    return joined if anchor is not None else pc.replace_substring(joined, "{,", "{", max_replacements=1)


def _is_constant(cells: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every cell (none null) holds the same text: the member is then one literal piece.

    Exports repeat many fields on every row (a format version, an account, a device model), and a
    literal costs the join nothing per row.
    """
    return bool(pc.all(pc.equal(cells, cells[0])).as_py())


def _constant(cells: pa.Array | pa.ChunkedArray) -> str:
    return json.dumps(cells[0].as_py(), ensure_ascii=False)


def _literals_merged(parts: list[Any]) -> list[Any]:
    """Adjacent literal pieces as one (the join's cost grows with its argument count)."""
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif not isinstance(part, str) or part:
            merged.append(part)
    return merged


def _json_strings(cells: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Pieces that join into each cell as a JSON string, escaped exactly like json.dumps(ensure_ascii=False)."""
    chunks = cells.chunks if isinstance(cells, pa.ChunkedArray) else [cells]
    counts = sum((_byte_counts(c) for c in chunks), np.zeros(256, np.int64))
    if not (counts[:32].any() or counts[ord('"')] or counts[ord("\\")]):  # the usual case
        return ['"', cells, '"']
    # ASCII bytes never occur inside a multi-byte UTF-8 sequence, so escaping them byte-wise is exact
    for code in (ord("\\"), ord('"'), *range(32)):  # the backslash first: later escapes add some
        if counts[code]:
            cells = pc.replace_substring(cells, chr(code), json.dumps(chr(code))[1:-1])
    return ['"', cells, '"']


def _byte_counts(chunk: pa.Array) -> Any:
    """How often each byte value occurs in the character data of a text chunk (a C-speed scan)."""
    data = chunk.buffers()[2]
    if data is None or not data.size:
        return np.zeros(256, np.int64)
    codes = np.frombuffer(data, np.uint8)
    # the usual chunk holds no control byte, quote or backslash: min and two scans say so quickly
    if codes.min() >= 32 and not (codes == ord('"')).any() and not (codes == ord("\\")).any():
        return np.zeros(256, np.int64)
    return np.bincount(codes, minlength=256)
