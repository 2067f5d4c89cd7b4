"""Where a chunk's batches wait until the chunk is complete, and the joining of small batches.

What follows the fetch (the dedup, the sinks) costs a fixed amount per batch, and a Parquet sink
makes each batch a row group: a provider yielding a few rows at a time would pay per few rows.
`Joiner` joins small batches into batches of about BATCH_ROWS rows, in order, for the spool and
for a chunk streamed straight to its destination alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from cdrfetch.files import local_io
from cdrfetch.records import BATCH_ROWS, Batch

# The spool is written once and read once: LZ4 costs less CPU than the disk time it saves (a 1M-row
# Polycom chunk is about 500 MB uncompressed) and keeps the temp disk of a large export a few times
# smaller. Replayed on one thread: parallel decompression held several batches' buffers at once.
SPOOL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
REPLAY_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)


@dataclass
class Joiner:
    """Batches of one table, joined until they hold BATCH_ROWS rows."""

    _pending: list[pa.RecordBatch] = field(default_factory=list)
    _rows: int = 0

    def add(self, data: pa.RecordBatch) -> pa.Table | None:
        """Take one batch; returns the rows that waited, once they reach BATCH_ROWS."""
        self._pending.append(data)
        self._rows += data.num_rows
        return self.flush() if self._rows >= BATCH_ROWS else None

    def flush(self) -> pa.Table | None:
        """Whatever waits, as one table of the batches (not copied into one: that costs a pass over
        every byte, a second for a 1M-row Polycom chunk)."""
        pending, self._pending, self._rows = self._pending, [], 0
        return pa.Table.from_batches(pending) if pending else None


def joined(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """`batches` joined into tables of about BATCH_ROWS rows, in order."""
    joiner = Joiner()
    for data in batches:
        if (ready := joiner.add(data)) is not None:
            yield ready
    if (rest := joiner.flush()) is not None:
        yield rest


@dataclass
class Spool:
    """One chunk's batches parked on disk (Arrow IPC streams, LZ4) until the chunk is complete."""

    directory: Path
    paths: dict[str, Path] = field(default_factory=dict)
    _writers: dict[str, pa.ipc.RecordBatchStreamWriter] = field(default_factory=dict)
    _joiners: dict[str, Joiner] = field(default_factory=dict)

    def add(self, batch: Batch) -> None:
        self._write(batch.table, self._joiners.setdefault(batch.table, Joiner()).add(batch.data))

    def _write(self, table: str, ready: pa.Table | None) -> None:
        if ready is None:
            return
        with local_io(f"the spool in {self.directory}"):
            if table not in self._writers:
                path = self.directory / f"spool-{table}.arrow"
                self.paths[table] = path
                self._writers[table] = pa.ipc.new_stream(str(path), ready.schema, options=SPOOL_OPTIONS)
            # one IPC batch per BATCH_ROWS rows: the replay then hands on batches of that size
            self._writers[table].write_table(ready.combine_chunks())

    def close(self) -> None:
        for table, joiner in self._joiners.items():
            self._write(table, joiner.flush())
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def replay(self, table: str) -> Iterator[pa.RecordBatch]:
        path = self.paths.get(table)
        if path is None:
            return
        # Read, not memory-mapped: a mapped spool's pages stay resident (and in the RSS) until the whole
        # table is replayed, so memory would grow with the chunk; read batches are freed one by one.
        with pa.OSFile(str(path)) as source:
            yield from pa.ipc.open_stream(source, options=REPLAY_OPTIONS)

    def discard(self) -> None:
        self._joiners.clear()
        self.close()
        for path in self.paths.values():
            path.unlink(missing_ok=True)
        self.paths.clear()
