"""Youlianyun bill files -> normalized `calls` batches (spec §5, §6), streamed and columnar.

Raw blocks come from `read` (fast Arrow reader, exact csv-module reader with line
numbers). Blocks are normalized with pyarrow.compute; only SHA-1 runs per row, in one tight loop,
while a worker thread converts the next block.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, tzinfo
from operator import methodcaller
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdrfetch.errors import DataError
from cdrfetch.providers.youlianyun.read import (
    DAMAGED,
    FIELDS,
    Layout,
    RawBlock,
    arrow_blocks,
    durations,
    first,
    naive_stamps,
    python_blocks,
    sniff_layout,
    where,
)
from cdrfetch.records import BATCH_ROWS, CALLS, extra_json
from cdrfetch.tabular import blank_to_null, columnwise_then_exact, json_objects, local_to_utc, within_range
from cdrfetch.untrusted import shown
from cdrfetch.windows import Window

TYPE_LABELS = {"0": "direct", "1": "free", "2": "callback"}
_TYPES, _LABELS = pa.array(list(TYPE_LABELS)), pa.array(list(TYPE_LABELS.values()))
PROVIDER = "youlianyun"
_HEX = methodcaller("hexdigest")
PRINT_CHARS = 24  # hex digits of an id kept to match repeats: 96 bits
_SCAN_ROWS = 1 << 18  # fingerprints read back from the history at a time


@dataclass
class _Ready:
    """A block with every output column computed except the ids."""

    columns: dict[str, pa.Array]
    keys: pa.Array  # binary 'sid|app|ClientId|Callee|startTime|duration|type|0'
    start: pa.Array


class DayParser:
    """Normalizes the files of one day; the occurrence index `n` runs across all of them."""

    def __init__(self, account_sid: str, app_id: str, tz: tzinfo, keep: Window | None) -> None:
        self.account_sid, self.app_id, self.tz, self.keep = account_sid, app_id, tz, keep
        self.occurrences = Occurrences()
        self._spill = Path(tempfile.gettempdir())  # where the occurrence history goes: beside the member
        self.rows = 0  # data rows seen (before the window filter)

    def parse(self, path: Path, name: str) -> Iterator[pa.RecordBatch]:
        """Yield `calls` batches (at most BATCH_ROWS rows) of one decoded member file."""
        layout = sniff_layout(path, name)
        self._spill = path.parent
        done = [0]

        def exact() -> Iterator[pa.RecordBatch]:
            for raw in python_blocks(path, layout, done[0], name):
                yield from _slices(self._finish(self._prepare(raw, name)))

        yield from columnwise_then_exact(self._fast(path, layout, name, done), exact) if layout.regular else exact()

    def _fast(self, path: Path, layout: Layout, name: str, done: list[int]) -> Iterator[pa.RecordBatch]:
        """Arrow reader; the next block is read and converted on a worker thread (Arrow releases the
        GIL) while this one is hashed, which is the only per-row Python work."""
        blocks = arrow_blocks(path, layout)

        def prepare_next() -> _Ready | None:
            raw = next(blocks, None)
            return None if raw is None else self._prepare(raw, name)

        with ThreadPoolExecutor(1, thread_name_prefix="youlianyun-parse") as pool:
            pending = pool.submit(prepare_next)
            while (ready := pending.result()) is not None:
                pending = pool.submit(prepare_next)
                batch = self._finish(ready)
                done[0] += len(ready.start)
                yield from _slices(batch)

    def _prepare(self, raw: RawBlock, name: str) -> _Ready:
        """Every column but the ids (vectorized; raises on a bad mandatory value)."""
        cells = raw.cells
        start = self._start_times(cells["startTime"], raw.lines, name)
        duration = durations(cells["duration"], raw.lines, name)
        count = len(start)
        end = within_range(pc.add(start, pc.cast(pc.multiply(duration, 1000), pa.duration("ms"))))
        if end.null_count > duration.null_count:
            row = first(pc.and_(pc.is_null(end), pc.is_valid(duration)))
            cell = cells["duration"][row].as_py()
            raise DataError(f"{where(raw.lines, row, name)}: duration {shown(cell)} ends after the year 9999", DAMAGED)
        columns = {
            "provider": pa.repeat(pa.scalar(PROVIDER), count),
            "account": pa.repeat(pa.scalar(self.account_sid), count),
            "start_time": start,
            "end_time": end,
            "duration_s": duration,
            "caller": blank_to_null(cells["ClientId"]),
            "callee": blank_to_null(cells["Callee"]),
            "direction": pa.repeat(pa.scalar("unknown"), count),
            "call_type": blank_to_null(cells["type"]),
            "extra": self._extras(cells["type"], raw.extras),
        }
        return _Ready(columns, self._hash_keys(cells), start)

    def _finish(self, ready: _Ready) -> pa.RecordBatch:
        """Number the rows (`n`), hash the ids, assemble the batch, apply the window."""
        ids = self.occurrences.assign(ready.keys, ready.start, self._spill)
        self.rows += len(ids)
        columns = {**ready.columns, "record_id": ids, "call_id": ids}
        count = len(ids)
        batch = pa.RecordBatch.from_arrays([columns.get(f.name, pa.nulls(count, f.type)) for f in CALLS], schema=CALLS)
        return batch if self.keep is None else batch.filter(self._inside(ready.start))

    def _hash_keys(self, cells: dict[str, pa.Array]) -> pa.Array:
        parts = [self.account_sid, self.app_id, *(cells[f] for f in FIELDS), "0"]
        return pc.binary_join_element_wise(*parts, "|").cast(pa.binary())

    def _inside(self, start: pa.Array) -> pa.Array:
        assert self.keep is not None
        low = pa.scalar(self.keep.start, CALLS.field("start_time").type)
        high = pa.scalar(self.keep.end, CALLS.field("start_time").type)
        return pc.and_(pc.greater_equal(start, low), pc.less(start, high))

    def _start_times(self, text: pa.Array, lines: list[int] | None, name: str) -> pa.Array:
        start = local_to_utc(naive_stamps(text, lines, name), self.tz)
        if start.null_count:  # every stamp was read: these fall before year 1 or after 9999 in UTC
            row = first(pc.is_null(start))
            cell = shown(text[row].as_py())
            raise DataError(f"{where(lines, row, name)}: startTime {cell} is outside the years 1-9999 in UTC", DAMAGED)
        return start

    def _extras(self, kind: pa.Array, extras: list[tuple[str, pa.Array]]) -> pa.Array:
        """`{"appId":..,"type_label":..,<extra columns>}`; a label only for the documented types."""
        labels = pc.take(_LABELS, pc.index_in(kind, value_set=_TYPES))
        members = {"appId": pa.repeat(pa.scalar(self.app_id), len(kind)), "type_label": labels}
        if {"appId", "type_label"} & {name for name, _ in extras}:  # a bill column of the same name wins
            return pa.array([self._extra_row(i, members, extras) for i in range(len(kind))], pa.string())
        return json_objects([*members.items(), *extras], len(kind))

    @staticmethod
    def _extra_row(row: int, members: dict[str, pa.Array], extras: list[tuple[str, pa.Array]]) -> str:
        fields = {name: cells[row].as_py() for name, cells in members.items() if cells[row].is_valid}
        fields.update((name, cells[row].as_py()) for name, cells in extras)
        return extra_json(fields)


class Occurrences:
    """The occurrence index `n` of §6 across a whole day, in memory that does not grow with the day.

    Rows are fingerprinted by the first 96 bits of their `n = 0` id (a SHA-1 of the row's key). A
    new block is matched against earlier fingerprints with one hash set built from the block itself.
    Identical rows start at the same instant, so while the file is in start order (bill files are)
    only the rows at the latest start instant can be repeated: those few stay in memory, and the
    match is O(block). Every fingerprint also goes to the `History` on disk, which only a day that
    is not in start order reads back (every block is then matched against all earlier rows).
    Only rows that really repeat are renumbered in Python.
    """

    def __init__(self) -> None:
        self.history = History()
        self.ordered = True  # every row so far starts no earlier than the row before it
        self.last: datetime | None = None  # start of the latest row
        self.tail: list[pa.Array] = []  # fingerprints of the earlier rows starting at `last`

    def assign(self, keys: pa.Array, start: pa.Array, spill: Path) -> pa.Array:
        """Record ids (40 hex) for keys ending in '|0', in order, with `n` applied; the history is kept
        in `spill` (a directory)."""
        raw: list[bytes] = keys.to_pylist()
        ids: list[str] = list(map(_HEX, map(hashlib.sha1, raw)))
        prints = pc.utf8_slice_codeunits(pa.array(ids, pa.string()), 0, PRINT_CHARS)
        earlier = self._earlier(prints, self._candidates(start))
        counts = pc.value_counts(prints)
        again = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
        repeated = pa.concat_arrays([again, pa.array(list(earlier), pa.string())])
        if len(repeated):
            self._renumber(raw, ids, prints, repeated, earlier)
        self.history.add(prints, spill)
        self._remember_tail(prints, start)
        return pa.array(ids, pa.string())

    def _candidates(self, start: pa.Array) -> Iterable[pa.Array]:
        """The earlier fingerprints a row of this block can repeat."""
        if self.ordered and len(start):
            ascending = len(start) < 2 or pc.all(pc.greater_equal(start[1:], start[:-1])).as_py()
            self.ordered = bool(ascending) and (self.last is None or start[0].as_py() >= self.last)
        return self.tail if self.ordered else self.history.scan()

    def _remember_tail(self, prints: pa.Array, start: pa.Array) -> None:
        if not (self.ordered and len(start)):
            return
        newest = start[-1]
        at_newest = prints.filter(pc.equal(start, newest))
        self.tail = (self.tail if newest.as_py() == self.last else []) + [at_newest]
        self.last = newest.as_py()

    @staticmethod
    def _earlier(prints: pa.Array, candidates: Iterable[pa.Array]) -> dict[str, int]:
        """Fingerprint -> occurrences among `candidates`, for this block's fingerprints that have some."""
        hits = [found for before in candidates if len(found := before.filter(pc.is_in(before, value_set=prints)))]
        if not hits:
            return {}
        counts = pc.value_counts(pa.chunked_array(hits, pa.string()))
        return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))

    @staticmethod
    def _renumber(
        raw: list[bytes], ids: list[str], prints: pa.Array, repeated: pa.Array, earlier: dict[str, int]
    ) -> None:
        rows = pc.indices_nonzero(pc.is_in(prints, value_set=repeated)).to_pylist()
        seen = dict(earlier)
        for row, key in zip(rows, prints.take(pa.array(rows, pa.int64())).to_pylist(), strict=True):
            n = seen.get(key, 0)
            seen[key] = n + 1
            if n:
                ids[row] = hashlib.sha1(raw[row][:-1] + str(n).encode()).hexdigest()


class History:
    """Every fingerprint of the day so far, in order, in an unnamed temp file (PRINT_CHARS bytes a row).

    Written as it comes (cheap: a few MB a million rows) and read back, a slice at a time, only for
    a day whose rows are not in start order.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._rows = 0

    def add(self, prints: pa.Array, directory: Path) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (lives as long as the day)
        _, offsets, data = prints.buffers()
        bounds = np.frombuffer(offsets, np.int32, len(prints) + 1, prints.offset * 4)
        self._file.seek(0, os.SEEK_END)
        self._file.write(memoryview(data)[bounds[0] : bounds[-1]])
        self._rows += len(prints)

    def scan(self) -> Iterator[pa.Array]:
        if self._file is None:
            return
        self._file.seek(0)
        for begin in range(0, self._rows, _SCAN_ROWS):
            count = min(_SCAN_ROWS, self._rows - begin)
            data = pa.py_buffer(self._file.read(count * PRINT_CHARS))
            offsets = pa.py_buffer(np.arange(0, (count + 1) * PRINT_CHARS, PRINT_CHARS, dtype=np.int32))
            yield pa.Array.from_buffers(pa.string(), count, [None, offsets, data])


def _slices(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    for offset in range(0, batch.num_rows, BATCH_ROWS):
        yield batch.slice(offset, BATCH_ROWS)
