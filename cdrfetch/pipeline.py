"""window -> chunks -> provider.fetch -> spool -> dedup -> sinks, and the run summary.

Each chunk is fetched into a spool (Arrow IPC files in the run's temp directory) and only copied
to the outputs once the provider has delivered all of it, so a chunk that fails half way leaves
no rows behind: each chunk succeeds or fails on its own. Authentication and configuration errors
stop the run at once, because every later chunk would fail the same way (and some servers lock
the caller out after repeated failures).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from cdrfetch import archive, crashpoints
from cdrfetch.errors import CdrfetchError, ExitCode, LocalIOError, PartialResultError
from cdrfetch.providers.base import Provider
from cdrfetch.records import Batch, first_sightings
from cdrfetch.sinks import Sink, names_directory, open_sink
from cdrfetch.summary import ChunkResult, RunSummary
from cdrfetch.windows import Window

if TYPE_CHECKING:
    from cdrfetch.progress import Progress

log = logging.getLogger("cdrfetch.pipeline")
FATAL = (ExitCode.AUTH, ExitCode.CONFIG, ExitCode.USAGE)
DEFAULT_DIR = "cdrs"


def output_targets(
    output: str | None, fmt: str, provider: str, account: str, label: str, tables: Mapping[str, pa.Schema]
) -> dict[str, Path | None]:
    """Table -> file (None: stdout). Side tables go beside the calls file, named by suffix.

    `-o -` is stdout (calls only); a directory (existing, ending in '/', or a name without a
    suffix) gets the deterministic layout `<dir>/<provider>/<account>/<label>.<ext>`; anything
    else is the file.
    """
    if output == "-":
        return {"calls": None}
    if output is None or names_directory(output):
        calls = Path(output or DEFAULT_DIR) / provider / _safe(account) / f"{label}.{fmt}"
    else:
        calls = Path(output)
    return {
        table: calls if table == "calls" else calls.with_name(f"{calls.stem}.{table}{calls.suffix}") for table in tables
    }


def _safe(text: str) -> str:
    """A path segment that cannot escape its directory."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text).strip(".") or "_"


@dataclass
class Spool:
    """One chunk's batches parked on disk until the chunk is complete."""

    directory: Path
    paths: dict[str, Path] = field(default_factory=dict)
    _writers: dict[str, pa.ipc.RecordBatchStreamWriter] = field(default_factory=dict)

    def add(self, batch: Batch) -> None:
        with local_io(f"the spool in {self.directory}"):
            if batch.table not in self._writers:
                path = self.directory / f"spool-{batch.table}.arrow"
                self.paths[batch.table] = path
                self._writers[batch.table] = pa.ipc.new_stream(str(path), batch.data.schema)
            self._writers[batch.table].write_batch(batch.data)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def replay(self, table: str) -> Iterator[pa.RecordBatch]:
        path = self.paths.get(table)
        if path is None:
            return
        with pa.memory_map(str(path)) as source:
            yield from pa.ipc.open_stream(source)

    def discard(self) -> None:
        self.close()
        for path in self.paths.values():
            path.unlink(missing_ok=True)
        self.paths.clear()


@dataclass(frozen=True)
class Services:
    """What the pipeline works with besides the provider: the summary it fills, the progress display
    and the directory chunks are spooled in."""

    summary: RunSummary
    progress: Callable[[str, float | None], Progress]
    spool: Path


class Run:
    """One pull: fetch every chunk of `window`, write the tables, fill the summary."""

    def __init__(
        self, provider: Provider, sinks: dict[str, Sink], services: Services, already: Mapping[str, set[str]]
    ) -> None:
        self.provider = provider
        self.sinks = sinks
        self.services = services
        self.summary = services.summary
        self.schemas = provider.output_tables()
        self.seen = {table: set(already.get(table, ())) for table in sinks}  # ids already written, anywhere
        self.written: dict[str, set[str]] = {table: set() for table in sinks}  # ids this run wrote
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
        for table in self.sinks:
            result.records[table] = self._commit(table, spool)
        spool.discard()
        result.status = "ok"

    def _check_schema(self, batch: Batch) -> None:
        expected = self.schemas.get(batch.table)
        if expected is None or not batch.data.schema.equals(expected):
            raise TypeError(f"{self.provider.name} yielded a {batch.table!r} batch that does not match its schema")

    def _commit(self, table: str, spool: Spool) -> int:
        """Copy the spooled rows of `table` to its sink, dropping record_ids already written."""
        written = 0
        for data in spool.replay(table):
            ids = data.column("record_id").to_pylist()
            keep = first_sightings(ids, self.seen[table])
            self.written[table].update(itertools.compress(ids, keep))
            if not all(keep):
                self.summary.duplicates_dropped += keep.count(False)
                data = data.filter(pa.array(keep))
            with local_io(str(self.sinks[table].target or "stdout")):
                self.sinks[table].write(data)
            written += data.num_rows
        self.summary.count(table, written)
        return written

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
    """What a pull put in place: the record ids per table, and the partial-result error, if any
    (raised by the caller once the run is recorded)."""

    ids: dict[str, set[str]]
    partial: CdrfetchError | None


def pull(
    provider: Provider,
    window: Window,
    services: Services,
    *,
    output: str | None,
    fmt: str,
    allow_partial: bool,
    already: Mapping[str, set[str]] | None = None,
) -> Written:
    """Run a whole pull into `output`.

    Outputs are committed (renamed into place) only when at least one chunk succeeded; if every
    chunk failed, nothing is written and the chunk error is raised. `already` (table -> record ids)
    holds ids written by earlier runs, which are skipped.
    """
    summary = services.summary
    tables = provider.output_tables()
    targets = output_targets(output, fmt, provider.name, provider.account, window.label, tables)
    if output == "-" and len(tables) > 1:
        log.warning("stdout carries the calls table only; use -o DIR for %s", ", ".join(tables))
    sinks: dict[str, Sink] = {}
    try:
        for table, target in targets.items():
            sinks[table] = open_sink(fmt, tables[table], target)
        run = Run(provider, sinks, services, already or {})
        run.execute(window)
        error = run.outcome(allow_partial)
        if error is not None and error is run.last_error:
            raise error
        crashpoints.reach("before-rename")
        for table in list(sinks):
            _record_file(summary, table, sinks.pop(table))
    finally:
        for sink in sinks.values():
            sink.abort()
    return Written(run.written, error)


def _record_file(summary: RunSummary, table: str, sink: Sink) -> None:
    """Commit one sink and describe the file in the summary (path, rows, size, SHA-256)."""
    with local_io(str(sink.target or "stdout")):
        path = sink.commit()
    entry: dict[str, object] = {"table": table, "path": str(path) if path else "-", "rows": sink.rows}
    if path is not None:
        entry.update(bytes=path.stat().st_size, sha256=archive.file_digest(path, "sha256"))
    summary.files.append(entry)


@contextlib.contextmanager
def local_io(where: str) -> Iterator[None]:
    """A failing local write (disk full, I/O error) ends the run with exit 74, naming the place."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader of stdout left: the CLI reports that itself
    except OSError as exc:
        raise LocalIOError(
            f"cannot write {where}: {exc.strerror or exc}", "free disk space, or check the disk"
        ) from None


def complete_until(summary: RunSummary) -> datetime | None:
    """End of the leading chunks that all succeeded: how far the run's data is complete."""
    reached = None
    for chunk in summary.chunks:
        if chunk.status != "ok":
            break
        reached = datetime.fromisoformat(chunk.end)
    return reached
