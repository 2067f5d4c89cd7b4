"""Column-wise parsing of a regular Polycom calls member with Arrow (a million rows in seconds).

Only the common case is handled here: CALL rows with one column count, offsets on every time, no
ITP lists, no inverted times and no control characters. The member is read in blocks of whole
lines, so memory stays flat however large the export. The first block that is not regular, and
everything after it, goes to the row-by-row parser (which names the line of a bad row and warns
about oddities); both paths produce the same rows, and a property test holds them to that.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cdrfetch.providers._polycom_parse import CALL_COLUMNS, CALL_MAPPED
from cdrfetch.records import CALLS

_CONTROL = bytes(c for c in range(32) if c != 10)  # \r is allowed only as part of \r\n
TIME = r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"
_MAPPED = {name.lower() for name in CALL_MAPPED}
_NULL = pa.scalar(None, pa.string())
PART_MIN_ROWS = 50_000  # below this, threads cost more than they save
BLOCK_BYTES = 32 << 20  # member bytes read at once (bounds the memory of a large export)
T = TypeVar("T")


class _Fallback(Exception):
    """This block needs the row-by-row parser."""


@dataclass
class Leftover:
    """What the column-wise path hands to the row parser: the member from one block on."""

    data: bytes
    line: int  # lines of the member before `data`
    header: list[str] | None  # the names of the member's header row, if it has one


@dataclass
class _Done:
    """One block, read: its calls inside the window and what it held."""

    calls: pa.Table
    rows: int  # CALL rows
    after_window: int  # of them, starting at/after the chunk end
    lines: int  # lines of the member it covered


class CallsReader:
    """Normalizes a member block by block while its rows are regular (see the module docstring).

    After `tables()` is exhausted, `leftover` is what the row parser must read (None: nothing),
    and `rows` / `after_window` count the CALL rows read here and those at/after the chunk end.
    """

    def __init__(self, handle: BinaryIO, *, account: str, chunk_end: datetime) -> None:
        """`handle`: the member (seekable), positioned at its first byte after any BOM."""
        self.lines = _Lines(handle)
        self.account, self.chunk_end = account, chunk_end
        self.names: list[str] = []
        self.header = False
        self.rows = self.after_window = 0
        self.leftover: Leftover | None = None

    def tables(self) -> Iterator[pa.Table]:
        """The calls inside the window, a block at a time.

        The next block is worked on in the background while the caller handles the current one.
        """
        line = 0
        in_flight: list[tuple[bytes, Future[_Done]]] = []  # at most two blocks, in file order
        with ThreadPoolExecutor(1, thread_name_prefix="polycom-block") as ahead:
            for index, block in enumerate(self.lines.blocks()):
                if index == 0:  # the first block holds at least the whole first line
                    self.names, self.header = _layout(block)
                in_flight.append((block, ahead.submit(self._work, block, int(self.header and index == 0))))
                if len(in_flight) == 2:
                    line = yield from self._finish(in_flight, line)
                    if self.leftover:
                        return
            while in_flight and not self.leftover:
                line = yield from self._finish(in_flight, line)

    def _finish(self, in_flight: list[tuple[bytes, Future[_Done]]], line: int) -> Generator[pa.Table, None, int]:
        """Yield the oldest block's calls (or hand it and the rest to the row parser); lines so far."""
        block, work = in_flight[0]
        try:
            done = work.result()
        except (_Fallback, pa.ArrowInvalid, pa.ArrowTypeError):  # invalid UTF-8 is ArrowInvalid too
            rest = b"".join([block, *(later for later, _ in in_flight[1:]), self.lines.rest()])
            self.leftover = Leftover(rest, line, self.names if self.header else None)
            return line
        in_flight.pop(0)
        self.rows += done.rows
        self.after_window += done.after_window
        if done.calls.num_rows:
            yield done.calls
        return line + done.lines

    def _work(self, block: bytes, skip: int) -> _Done:
        """Read, check and normalize one block; _Fallback unless all its rows are regular."""
        table = _read(block, self.names, skip)
        if not table.num_rows:  # the header row alone
            return _Done(CALLS.empty_table(), 0, 0, skip)
        after = sum(_in_parallel(table, lambda part: _checked(part, self.names, self.chunk_end)))
        calls = pa.concat_tables(_in_parallel(table, self._normalized))
        return _Done(calls, table.num_rows, after, table.num_rows + skip)

    def _normalized(self, part: pa.Table) -> pa.Table:
        return _calls(part, self.names, self.account, self.chunk_end)


class _Lines:
    """A member's bytes in blocks of whole lines (the last one may lack its line end)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def blocks(self) -> Iterator[bytes]:
        while data := self.handle.read(BLOCK_BYTES):
            if len(data) == BLOCK_BYTES:  # more may follow: end the block at a line end
                cut = data.rfind(b"\n") + 1
                if not cut:  # one line longer than a block
                    data += self.handle.readline()
                elif cut < len(data):
                    self.handle.seek(cut - len(data), io.SEEK_CUR)  # the partial line starts the next block
                    data = data[:cut]
            yield data

    def rest(self) -> bytes:
        """Everything after the last block handed out."""
        return self.handle.read()


def _layout(first: bytes) -> tuple[list[str], bool]:
    """(column names, whether the first line is a header row); no names: not for this path."""
    end = first.find(b"\n")
    try:
        cells = next(csv.reader([first[: end if end >= 0 else len(first)].decode("utf-8")]), [])
    except UnicodeDecodeError:
        return [], False
    if not first or first[:1] in b"\r\n" or len(cells) < 3:
        return [], False
    if cells[0].strip().lower() == "version":
        return [c.strip() for c in cells], True
    return [*CALL_COLUMNS, *(f"col_{i + 1}" for i in range(8, len(cells)))][: len(cells)], False


def _in_parallel(table: pa.Table, work: Callable[[pa.Table], T]) -> list[T]:
    """`work` over row ranges of `table`, one per core (Arrow's kernels release the GIL)."""
    size = max(PART_MIN_ROWS, -(-table.num_rows // (os.cpu_count() or 1)))
    parts = [table.slice(start, size) for start in range(0, table.num_rows, size)] or [table]
    with ThreadPoolExecutor(len(parts)) as pool:
        return list(pool.map(work, parts))


def _read(block: bytes, names: list[str], skip: int) -> pa.Table:
    """All cells of a block of whole lines as strings, `skip` header lines left out."""
    if not names:
        raise _Fallback
    width = len(names)
    with ThreadPoolExecutor(1) as pool:
        # The byte scans hold the GIL and Arrow's threaded CSV reader does not: run them side by side.
        lines = pool.submit(_plain_lines, block)
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(column_names=[f"f{i}" for i in range(width)], skip_rows=skip),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)}, strings_can_be_null=False
            ),
        )
        if lines.result() != table.num_rows + skip:
            raise _Fallback
    return table


def _plain_lines(data: bytes) -> int:
    """The line count, or -1 when a control character other than a line end appears.

    Control characters would need JSON escapes in `extra`, and a line break inside a quoted value
    would make the line count differ from the row count (which is how such values are caught).
    """
    if len(data) - len(data.translate(None, _CONTROL)) != data.count(b"\r\n"):
        return -1
    return data.count(b"\n") + (not data.endswith(b"\n"))


def _checked(table: pa.Table, names: list[str], chunk_end: datetime) -> int:
    """Rows starting at/after `chunk_end`; _Fallback unless every row suits the column-wise path."""
    kinds = pc.utf8_upper(pc.utf8_trim_whitespace(table.column(1)))
    if table.num_rows == 0 or not pc.all(pc.equal(kinds, "CALL")).as_py():
        raise _Fallback
    column = _columns(table, names)
    uuid, start_text, end_text = column("callUuid"), column("startTime"), column("endTime")
    _require(pc.all(pc.invert(pc.match_substring(uuid, ","))))
    _require(pc.all(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(uuid)), 0)))
    _require(pc.all(pc.match_substring_regex(start_text, TIME)))
    _require(pc.all(pc.or_(pc.equal(end_text, ""), pc.match_substring_regex(end_text, TIME))))
    start, _, millis = _times(column)
    _require(pc.invert(pc.any(pc.less(millis, 0), min_count=0)))  # min_count 0: no end time at all is fine
    return int(pc.sum(pc.invert(_inside(start, chunk_end))).as_py() or 0)


def _calls(table: pa.Table, names: list[str], account: str, chunk_end: datetime) -> pa.Table:
    """The normalized calls of checked rows that start inside the window."""
    column = _columns(table, names)
    start, end, millis = _times(column)
    arrays = _normalized(table, names, column, column("callUuid"), start, end, millis, account)
    return pa.Table.from_arrays(arrays, schema=CALLS).filter(_inside(start, chunk_end))


def _times(column: Any) -> tuple[Any, Any, Any]:
    """(start, end, end - start in ms) in UTC; end is null where the cell is empty."""
    end_text = column("endTime")
    start, end = _utc(column("startTime")), _utc(pc.if_else(pc.equal(end_text, ""), _NULL, end_text))
    return start, end, pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64()))


def _inside(start: Any, chunk_end: datetime) -> Any:
    micros = pa.timestamp("us", tz="UTC")  # the window end may carry microseconds
    return pc.less(pc.cast(start, micros), pa.scalar(chunk_end, micros))


def _columns(table: pa.Table, names: list[str]) -> Any:
    lowered = [n.lower() for n in names]

    def column(name: str) -> pa.ChunkedArray:
        index = lowered.index(name.lower()) if name.lower() in lowered else -1
        return table.column(index) if index >= 0 else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])

    return column


def _require(condition: Any) -> None:
    if not condition.as_py():
        raise _Fallback


def _utc(text: Any) -> Any:
    instant = pc.cast(text, pa.timestamp("ns", tz="UTC"))
    return pc.cast(pc.floor_temporal(instant, unit="millisecond"), pa.timestamp("ms", tz="UTC"))


def _optional(values: Any) -> Any:
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(values), ""), _NULL, values)


def _normalized(
    table: pa.Table, names: list[str], column: Any, uuid: Any, start: Any, end: Any, millis: Any, account: str
) -> list[Any]:
    rows = table.num_rows
    wall = pc.cast(pc.cast(start, pa.timestamp("ms")), pa.string())  # "YYYY-MM-DD HH:MM:SS.fff", UTC
    stamp = pc.replace_substring(pc.replace_substring_regex(wall, r"\.000$", ""), " ", "T")
    dialin = pc.utf8_upper(pc.utf8_trim_whitespace(column("dialin")))
    has_callee = "destendpoint" in {n.lower() for n in names}
    nothing = pa.nulls(rows, pa.string())
    return [
        pa.array(["polycom"] * rows, pa.string()),
        pa.array([account] * rows, pa.string()),
        pc.binary_join_element_wise(uuid, ":", stamp, "Z", ""),
        uuid,
        start,
        end,
        pc.divide(millis, 1000),
        pa.nulls(rows, pa.int64()),
        _optional(column("origEndpoint")),
        _optional(column("destEndpoint")) if has_callee else nothing,
        pc.if_else(pc.equal(dialin, "TRUE"), "inbound", "unknown"),
        _optional(column("callType")),
        _optional(column("failureSignalingCode")),
        pa.nulls(rows, CALLS.field("cost").type),
        nothing,
        nothing,
        nothing,
        _extra(table, names),
    ]


def _extra(table: pa.Table, names: list[str]) -> Any:
    """`{"name":"value",...}` of the non-empty unmapped cells, in column order, in one string join.

    A column with no blank cell (the common case) joins in as literal pieces around the column
    itself, so no per-column string is built. The first such column anchors the commas: the pairs
    before it carry a trailing comma and the pairs after it a leading one, so a blank cell (an
    empty piece) never leaves a stray comma and nothing needs trimming afterwards.
    """
    pairs = []  # (key prefix, escaped cells, blank mask or None when no cell is blank)
    for name, cells in zip(names, table.columns, strict=True):
        if name.lower() in _MAPPED:
            continue
        blank = _blank(cells)
        if pc.all(blank).as_py():
            continue
        key = json.dumps(name, ensure_ascii=False) + ':"'
        pairs.append((key, _escaped(cells), blank if pc.any(blank).as_py() else None))
    if not pairs:
        return pa.array(["{}"] * table.num_rows, pa.string())
    anchor = next((i for i, (_, _, blank) in enumerate(pairs) if blank is None), None)
    if anchor is None:  # every column has blank cells: let the join skip the absent pairs
        present = [pc.if_else(blank, _NULL, pc.binary_join_element_wise(k, v, '"', "")) for k, v, blank in pairs]
        return pc.binary_join_element_wise(
            "{", pc.binary_join_element_wise(*present, ",", null_handling="skip"), "}", ""
        )
    parts: list[Any] = ["{"]
    for i, (key, value, blank) in enumerate(pairs):
        head, tail = ("," if i > anchor else "") + key, '"' + ("," if i < anchor else "")
        if blank is None:
            parts += [head, value, tail]
        else:
            parts.append(pc.if_else(blank, "", pc.binary_join_element_wise(head, value, tail, "")))
    return pc.binary_join_element_wise(*parts, "}", "")


def _escaped(cells: Any) -> Any:
    """The cells as JSON string contents (no control characters reach this path)."""
    if _may_contain(cells, b"\\"):
        cells = pc.replace_substring(cells, "\\", "\\\\")
    if _may_contain(cells, b'"'):
        cells = pc.replace_substring(cells, '"', '\\"')
    return cells


def _may_contain(cells: pa.ChunkedArray, needle: bytes) -> bool:
    """Whether any cell may hold `needle`: one byte search of the value buffers, no per-cell work.

    A sliced array's buffer can hold bytes of cells outside the slice; such a false hit only costs
    an escape pass that changes nothing.
    """
    return any(needle in chunk.buffers()[2].to_pybytes() for chunk in cells.chunks if chunk.buffers()[2] is not None)


def _blank(cells: Any) -> Any:
    """Cells that are empty or only whitespace (what `str.strip()` empties)."""
    return pc.or_(pc.equal(pc.utf8_length(cells), 0), pc.utf8_is_space(cells))
