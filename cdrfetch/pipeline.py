"""window -> chunks -> provider.fetch -> spool -> dedup -> destination, and the run summary.

Each chunk is fetched into a spool (Arrow IPC files in the run's temp directory) and only copied
to the outputs once the provider has delivered all of it, so a chunk that fails half way leaves
no rows behind: each chunk succeeds or fails on its own. Authentication and configuration errors
stop the run at once, because every later chunk would fail the same way (and some servers lock
the caller out after repeated failures).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from cdrfetch import crashpoints, fingerprints
from cdrfetch.destinations.base import Chunk, Destination, Load, Where
from cdrfetch.errors import CdrfetchError, ExitCode, PartialResultError
from cdrfetch.files import local_io
from cdrfetch.fingerprints import FingerprintSet
from cdrfetch.providers.base import Provider
from cdrfetch.records import BATCH_ROWS, Batch
from cdrfetch.summary import ChunkResult, RunSummary
from cdrfetch.windows import Window

if TYPE_CHECKING:
    from cdrfetch.progress import Progress

log = logging.getLogger("cdrfetch.pipeline")
# The spool is written once and read once: LZ4 costs less CPU than the disk time it saves (a 1M-row
# Polycom chunk is about 500 MB uncompressed) and keeps the temp disk of a large export a few times
# smaller. Replayed on one thread: parallel decompression held several batches' buffers at once.
SPOOL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
REPLAY_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)
FATAL = (ExitCode.AUTH, ExitCode.CONFIG, ExitCode.USAGE)


@dataclass
class Spool:
    """One chunk's batches parked on disk until the chunk is complete.

    Small batches are joined into batches of about BATCH_ROWS rows on their way in (order kept):
    what follows (the dedup, the sinks) costs a fixed amount per batch, which a provider yielding
    a few rows at a time would otherwise pay per few rows.
    """

    directory: Path
    paths: dict[str, Path] = field(default_factory=dict)
    _writers: dict[str, pa.ipc.RecordBatchStreamWriter] = field(default_factory=dict)
    _pending: dict[str, list[pa.RecordBatch]] = field(default_factory=dict)  # not yet BATCH_ROWS rows
    _pending_rows: dict[str, int] = field(default_factory=dict)

    def add(self, batch: Batch) -> None:
        self._pending.setdefault(batch.table, []).append(batch.data)
        self._pending_rows[batch.table] = self._pending_rows.get(batch.table, 0) + batch.data.num_rows
        if self._pending_rows[batch.table] >= BATCH_ROWS:
            self._write(batch.table)

    def _write(self, table: str) -> None:
        pending = self._pending.pop(table, [])
        self._pending_rows.pop(table, None)
        if not pending:
            return
        joined = pending if len(pending) == 1 else pa.Table.from_batches(pending).combine_chunks().to_batches()
        with local_io(f"the spool in {self.directory}"):
            if table not in self._writers:
                path = self.directory / f"spool-{table}.arrow"
                self.paths[table] = path
                self._writers[table] = pa.ipc.new_stream(str(path), pending[0].schema, options=SPOOL_OPTIONS)
            for data in joined:
                self._writers[table].write_batch(data)

    def close(self) -> None:
        for table in list(self._pending):
            self._write(table)
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
        self._pending.clear()
        self._pending_rows.clear()
        self.close()
        for path in self.paths.values():
            path.unlink(missing_ok=True)
        self.paths.clear()


@dataclass(frozen=True)
class Services:
    """What the pipeline works with besides the provider: the summary it fills, the progress display,
    the directory chunks are spooled in, and when the run started (no chunk is complete beyond it)."""

    summary: RunSummary
    progress: Callable[[str, float | None], Progress]
    spool: Path
    started: datetime | None = None


class Run:
    """One pull: fetch every chunk of `window`, store each complete one in the destination, fill the summary."""

    def __init__(
        self,
        provider: Provider,
        load: Load,
        services: Services,
        already: Mapping[str, FingerprintSet],
        *,
        anchor: datetime,
        unit_id: str | None = None,
    ) -> None:
        self.provider = provider
        self.load = load
        self.services = services
        self.summary = services.summary
        self.schemas = provider.output_tables()
        self.anchor = anchor
        self.unit_id = unit_id
        self.already = already  # ids written by earlier runs (file destinations only)
        self.written = {table: FingerprintSet(spill=services.spool) for table in self.schemas}  # ids this run wrote
        self.last_error: CdrfetchError | None = None  # the error of the latest failed chunk

    def execute(self, window: Window) -> None:
        """Fetch all chunks; raise the fatal error, or leave per-chunk failures in the summary."""
        chunks = self.provider.chunks(window)
        progress = self.services.progress("chunks", len(chunks))
        try:
            for number, chunk in enumerate(chunks, 1):
                self._chunk(chunk, last=number == len(chunks))
                progress.update(completed=number, status=chunk.label)
        finally:
            progress.close()

    def _chunk(self, chunk: Window, *, last: bool) -> None:
        result = ChunkResult(chunk.label, chunk.start.isoformat(), chunk.end.isoformat())
        self.summary.chunks.append(result)
        spool = Spool(self.services.spool)
        try:
            for batch in self.provider.fetch(chunk):
                self._check_schema(batch)
                spool.add(batch)
            spool.close()
        except CdrfetchError as error:
            spool.discard()
            result.status, result.error, result.exit_code = "failed", str(error), int(error.exit_code)
            if error.exit_code in FATAL:
                raise
            if not last:  # the run goes on: name the chunk now (the last one is named by the run's final error)
                log.error("chunk %s failed: %s", chunk.label, error)
            self.last_error = error
            return
        crashpoints.reach("chunk-spooled")
        offered: dict[str, int] = {}
        fresh = {table: self._fresh(table, spool, offered) for table in self.schemas}
        stored = self.load.store(self._proof(chunk), fresh)
        spool.discard()
        for table, rows in stored.items():
            result.records[table] = rows
            self.summary.count(table, rows)
            self.summary.duplicates_dropped += offered.get(table, 0) - rows  # already in the destination
        result.status = "ok"

    def _proof(self, chunk: Window) -> Chunk:
        """The chunk as the destination records it: complete up to its end, never beyond the run's start."""
        started = self.services.started
        end = min(chunk.end, started) if started else chunk.end
        return Chunk(self.provider.name, self.provider.account, chunk.start, end, self.anchor, self.unit_id)

    def _check_schema(self, batch: Batch) -> None:
        expected = self.schemas.get(batch.table)
        if expected is None or not batch.data.schema.equals(expected):
            raise TypeError(f"{self.provider.name} yielded a {batch.table!r} batch that does not match its schema")

    def _fresh(self, table: str, spool: Spool, offered: dict[str, int]) -> Iterator[pa.RecordBatch]:
        """The spooled rows of `table` whose record_id this run (or, per `already`, an earlier one) has not
        written yet; `offered` counts what is handed on."""
        for data in spool.replay(table):
            fresh = fingerprints.unseen(data, self.written[table], self.already.get(table))
            self.summary.duplicates_dropped += data.num_rows - fresh.num_rows
            offered[table] = offered.get(table, 0) + fresh.num_rows
            yield fresh

    def outcome(self, allow_partial: bool) -> CdrfetchError | None:
        """The error the run ends with: None (success), the chunk error, or a partial result.

        Each failed chunk is named once on stderr: every one but the last when it fails, the last
        chunk by this error (when every chunk failed, it is that chunk's own error).
        """
        chunks = self.summary.chunks
        failed = [c for c in chunks if c.status == "failed"]
        if failed and len(failed) == len(chunks) and self.last_error is not None:
            return self.last_error
        reported = [] if allow_partial else self.summary.partial_reasons
        reasons = [f"chunk {c.label}: {c.error}" for c in failed if c is chunks[-1]] + reported
        problems = len(failed) + len(reported)
        if failed and not reasons:
            reasons = [f"{len(failed)} of {len(chunks)} chunks failed (named above)"]
        if reasons:
            return PartialResultError(f"partial result: {reasons[0]}", f"{problems} problem(s); see the run summary")
        return None


@dataclass(frozen=True)
class Written:
    """What a pull put in place: the record ids per table, as fingerprints (for the ledger; empty for
    destinations that keep their own), and the partial-result error, if any (raised by the caller once
    the run is recorded)."""

    ids: dict[str, FingerprintSet]
    partial: CdrfetchError | None


def pull(
    provider: Provider,
    window: Window,
    services: Services,
    destination: Destination,
    *,
    allow_partial: bool,
    already: Mapping[str, FingerprintSet] | None = None,
    anchor: datetime | None = None,
    unit_id: str | None = None,
) -> Written:
    """Run a whole pull into `destination`.

    Files are committed (put in place) only when at least one chunk succeeded; if every chunk
    failed, nothing is written and the chunk error is raised. Table destinations commit each chunk
    as it completes. `already` (table -> record ids) holds ids written by earlier runs, which are
    skipped. `anchor` is where the account's state may start (default: the window's start).
    """
    tables = provider.output_tables()
    where = Where.of_window(provider.name, provider.account, window)
    load = destination.open(tables, where)
    try:
        run = Run(provider, load, services, already or {}, anchor=anchor or window.start, unit_id=unit_id)
        run.execute(window)
        error = run.outcome(allow_partial)
        if error is not None and error is run.last_error:
            raise error
        crashpoints.reach("before-rename")
        services.summary.files.extend(load.commit())
    finally:
        load.abort()
    ids = {} if destination.keeps_state else run.written
    return Written(ids, error)


def complete_until(summary: RunSummary) -> datetime | None:
    """End of the leading chunks that all succeeded: how far the run's data is complete."""
    reached = None
    for chunk in summary.chunks:
        if chunk.status != "ok":
            break
        reached = datetime.fromisoformat(chunk.end)
    return reached
