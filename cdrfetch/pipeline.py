"""window -> chunks -> provider.fetch -> (spool) -> dedup -> destination, and the run summary.

A chunk that fails half way leaves no rows behind: each chunk succeeds or fails on its own. Where
the destination can take a chunk back whole (`Load.streams`: files not yet written to), the chunk's
calls go from the provider straight to it, and the parse and the write overlap; otherwise each
chunk is fetched into a spool (Arrow IPC files in the run's temp directory) and only copied to the
outputs once the provider has delivered all of it. Side tables are always spooled. Authentication
and configuration errors stop the run at once, because every later chunk would fail the same way
(and some servers lock the caller out after repeated failures).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from cdrfetch import crashpoints, fingerprints
from cdrfetch.destinations.base import Chunk, Destination, Load, Where
from cdrfetch.errors import CdrfetchError, ExitCode, PartialResultError
from cdrfetch.fingerprints import FingerprintSet
from cdrfetch.providers.base import Provider
from cdrfetch.records import Batch
from cdrfetch.spool import Spool, joined
from cdrfetch.summary import ChunkResult, RunSummary
from cdrfetch.windows import Window

if TYPE_CHECKING:
    from cdrfetch.progress import Progress

log = logging.getLogger("cdrfetch.pipeline")
FATAL = (ExitCode.AUTH, ExitCode.CONFIG, ExitCode.USAGE)


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
        fresh = Fresh(self.written, self.already, self.services.spool)
        try:
            if self.load.streams():
                stored = self.load.store(self._proof(chunk), self._streamed(chunk, spool, fresh))
            else:
                for _ in self._fetched(chunk, spool, live=None):  # no live table: everything goes to the spool
                    pass
                tables = {table: fresh.rows(table, spool.replay(table)) for table in self.schemas}
                stored = self.load.store(self._proof(chunk), tables)
        except FetchFailed as failure:
            self._failed(result, failure.error, last=last)
            return
        finally:
            spool.discard()
        fresh.keep()
        self.summary.duplicates_dropped += fresh.dropped
        for table, rows in stored.items():
            result.records[table] = rows
            self.summary.count(table, rows)
            self.summary.duplicates_dropped += fresh.offered.get(table, 0) - rows  # already in the destination
        result.status = "ok"

    def _failed(self, result: ChunkResult, error: CdrfetchError, *, last: bool) -> None:
        result.status, result.error, result.exit_code = "failed", str(error), int(error.exit_code)
        if error.exit_code in FATAL:
            raise error
        if not last:  # the run goes on: name the chunk now (the last one is named by the run's final error)
            log.error("chunk %s failed: %s", result.label, error)
        self.last_error = error

    def _fetched(self, chunk: Window, spool: Spool, *, live: str | None) -> Iterator[pa.RecordBatch]:
        """The provider's batches of table `live` as they come; every other table's go to `spool`.
        A provider's error comes out as FetchFailed, so that no destination takes it for its own."""
        try:
            for batch in self.provider.fetch(chunk):
                self._check_schema(batch)
                if batch.table == live:
                    yield batch.data
                else:
                    spool.add(batch)
            spool.close()
        except CdrfetchError as error:
            raise FetchFailed(error) from None
        crashpoints.reach("chunk-spooled")

    def _streamed(self, chunk: Window, spool: Spool, fresh: Fresh) -> dict[str, Iterator[pa.RecordBatch | pa.Table]]:
        """The chunk's tables for a streaming store: the first (calls) live, the side tables from the spool,
        which is complete once the first is exhausted (destinations read tables in order, each whole)."""
        first = next(iter(self.schemas))
        done: list[bool] = []

        def live() -> Iterator[pa.RecordBatch | pa.Table]:
            yield from fresh.rows(first, joined(self._fetched(chunk, spool, live=first)))
            done.append(True)

        def spooled(table: str) -> Iterator[pa.RecordBatch | pa.Table]:
            if not done:
                raise RuntimeError(f"the destination read {table} before {first} was complete")
            yield from fresh.rows(table, spool.replay(table))

        return {table: live() if table == first else spooled(table) for table in self.schemas}

    def _proof(self, chunk: Window) -> Chunk:
        """The chunk as the destination records it: complete up to its end, never beyond the run's start."""
        started = self.services.started
        end = min(chunk.end, started) if started else chunk.end
        return Chunk(self.provider.name, self.provider.account, chunk.start, end, self.anchor, self.unit_id)

    def _check_schema(self, batch: Batch) -> None:
        expected = self.schemas.get(batch.table)
        if expected is None or not batch.data.schema.equals(expected):
            raise TypeError(f"{self.provider.name} yielded a {batch.table!r} batch that does not match its schema")

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


class FetchFailed(Exception):
    """A provider's error, carried through a destination that was reading the chunk as it came."""

    def __init__(self, error: CdrfetchError) -> None:
        super().__init__(str(error))
        self.error = error


class Fresh:
    """One chunk's dedup: the rows whose record_id neither this chunk, this run nor (per `already`) an
    earlier run has written. The chunk's ids join the run's (`keep`) only once the chunk is stored, so a
    chunk that fails never hides its rows from a later one."""

    def __init__(self, written: dict[str, FingerprintSet], already: Mapping[str, FingerprintSet], spill: Path) -> None:
        self.written, self.already = written, already
        self.seen = {table: FingerprintSet(spill=spill) for table in written}
        self.offered: dict[str, int] = {}  # rows handed on, per table
        self.dropped = 0  # rows held back as repeats

    def rows(self, table: str, batches: Iterable[pa.RecordBatch | pa.Table]) -> Iterator[pa.RecordBatch | pa.Table]:
        for data in batches:
            kept = fingerprints.unseen(data, self.seen[table], self.written[table], self.already.get(table))
            self.dropped += data.num_rows - kept.num_rows
            self.offered[table] = self.offered.get(table, 0) + kept.num_rows
            yield kept

    def keep(self) -> None:
        for table, seen in self.seen.items():
            self.written[table].absorb(seen)


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
