"""A Polycom calls member read in blocks of whole lines, each normalized column-wise with Arrow.

Memory stays flat however large the export: one block is read while the one before it is handed
out. The first block that is not regular, and everything after it, goes to the row-by-row parser.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from pyarrow import csv as pacsv

from cdrfetch.providers.polycom.columnwise import regular_calls
from cdrfetch.providers.polycom.parse import CALL_COLUMNS
from cdrfetch.records import CALLS
from cdrfetch.tabular import Irregular, in_parallel

# Member bytes read at once: they bound the memory of a large export. Blocks of 4 MiB (about 14,000
# calls), two worked on at once while the caller writes the one before, keep both cores busy and the
# pipeline quick to fill and drain: 1M rows in less time than one 32 MiB block at a time, at half
# the peak RSS.
BLOCK_BYTES = 4 << 20
AHEAD = 2


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

        The next AHEAD blocks are worked on in the background while the caller handles the current one.
        """
        line = 0
        in_flight: list[tuple[bytes, Future[_Done]]] = []  # at most AHEAD + 1 blocks, in file order
        with ThreadPoolExecutor(AHEAD, thread_name_prefix="polycom-block") as ahead:
            for index, block in enumerate(self.lines.blocks()):
                if index == 0:  # the first block holds at least the whole first line
                    self.names, self.header = _layout(block)
                in_flight.append((block, ahead.submit(self._work, block, int(self.header and index == 0))))
                if len(in_flight) == AHEAD + 1:
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
        except (Irregular, pa.ArrowInvalid, pa.ArrowTypeError):  # invalid UTF-8 is ArrowInvalid too
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
        """Read, check and normalize one block; Irregular unless all its rows are regular."""
        table = _read(block, self.names, skip)
        if not table.num_rows:  # the header row alone
            return _Done(CALLS.empty_table(), 0, 0, skip)
        parts = in_parallel(table, lambda part: regular_calls(part, self.names, self.account, self.chunk_end))
        calls = pa.concat_tables([calls for calls, _ in parts])
        return _Done(calls, table.num_rows, sum(after for _, after in parts), table.num_rows + skip)


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
    except (UnicodeDecodeError, csv.Error):  # the row parser names the line (csv.Error: a field over 128 KiB)
        return [], False
    if not first or first[:1] in b"\r\n" or len(cells) < 3:
        return [], False
    if cells[0].strip().lower() == "version":
        return [c.strip() for c in cells], True
    return [*CALL_COLUMNS, *(f"col_{i + 1}" for i in range(8, len(cells)))][: len(cells)], False


def _read(block: bytes, names: list[str], skip: int) -> pa.Table:
    """All cells of a block of whole lines as strings, `skip` header lines left out."""
    if not names:
        raise Irregular
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
            raise Irregular
    return table


def _plain_lines(data: bytes) -> int:
    """The line count, or -1 when a control character other than a line end appears.

    Control characters would need JSON escapes in `extra`, and a line break inside a quoted value
    would make the line count differ from the row count (which is how such values are caught).
    """
    codes = np.frombuffer(data, np.uint8)
    # one vectorized pass (it releases the GIL, unlike bytes methods) finds every control byte
    where = np.flatnonzero(codes < 32)
    found = codes[where]
    carriage = where[found != 10]  # each must be a \r right before a \n
    if carriage.size and (carriage[-1] + 1 >= len(codes) or (found[found != 10] != 13).any()):
        return -1
    if carriage.size and (codes[carriage + 1] != 10).any():
        return -1
    return int(np.count_nonzero(found == 10)) + (not data.endswith(b"\n"))
