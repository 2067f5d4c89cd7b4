"""One pull's chunks merged into the Delta tables, each table in one commit, the state with the calls.

A chunk's rows of one table are first staged in an anonymous local temp file (Arrow IPC, batch by
batch, the partition column added): the merge then streams them from disk, the chunk's dates are
known before the merge (its partition predicate), and a merge that lost a race to a concurrent
commit is run again from a fresh table snapshot without holding the chunk in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import CommitProperties, Transaction

from cdrfetch import crashpoints
from cdrfetch.destinations.base import Chunk, Load
from cdrfetch.destinations.delta.storage import PARTITION, Place, table_schema, translated
from cdrfetch.destinations.state import advance, from_millis, to_millis
from cdrfetch.errors import TemporaryError
from cdrfetch.files import local_io

log = logging.getLogger("cdrfetch.pipeline")
ATTEMPTS = 40  # merges of one table and chunk before a conflict with concurrent runs is given up (75): a fleet
# of workers writing one table conflicts often (each merge reads the partitions others append to)
MAX_LISTED_DATES = 64  # beyond this many dates, the partition predicate is a range instead of a list
CRASHPOINT = "delta-before-calls-commit"
# The merge engine's memory before it spills to temp files. Its default let a 1M-row
# first load peak near 1 GB; at 64 MiB it peaked about 170 MB lower and took no longer.
MERGE_MEMORY = 64 << 20


class Staged:
    """One table's rows of a chunk in a temp file (gone with the process, even when killed)."""

    def __init__(self, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        self.schema = table_schema(schema)
        self.rows = 0
        self.dates: set[dt.date] = set()
        self.file: IO[bytes] = tempfile.TemporaryFile(prefix="cdrfetch-delta-")  # noqa: SIM115 (closed by close())
        try:
            with local_io("a Delta staging file"), pa.ipc.new_stream(self.file, self.schema) as writer:
                for batch in batches:
                    days = pc.cast(batch.column("start_time"), pa.date32())
                    self.dates.update(pc.unique(days).to_pylist())
                    writer.write_batch(pa.RecordBatch.from_arrays([*batch.columns, days], schema=self.schema))
                    self.rows += batch.num_rows
        except BaseException:
            self.file.close()
            raise

    def reader(self, fresh: pa.BooleanArray | None = None) -> pa.RecordBatchReader:
        """The staged rows from the start, batch by batch (only those `fresh` marks, when given)."""
        self.file.seek(0)
        staged = pa.ipc.open_stream(self.file)
        if fresh is None:
            return staged
        return pa.RecordBatchReader.from_batches(self.schema, _kept(staged, fresh))

    def fresh(self, known: pa.Array) -> pa.BooleanArray:
        """Per staged row: whether its record id is not among `known` (one hash of each side, all rows)."""
        # concat copies each batch's ids out of the batch's buffer, so the rest of the batch is freed
        none = pa.array([], pa.string())
        ids = pa.chunked_array([pa.concat_arrays([b.column("record_id"), none]) for b in self.reader()], pa.string())
        return pc.invert(pc.is_in(ids, value_set=known)).combine_chunks()

    def known_ids(self, table: DeltaTable) -> pa.Array:
        """The record ids `table` already holds in the chunk's partitions (that column only)."""
        days = sorted(str(day) for day in self.dates)
        listed = len(days) <= MAX_LISTED_DATES
        pruning = [(PARTITION, "in", days)] if listed else [(PARTITION, ">=", days[0]), (PARTITION, "<=", days[-1])]
        dataset = table.to_pyarrow_dataset(file_pruning_predicate=pruning)
        return dataset.to_table(columns=["record_id"]).column("record_id").combine_chunks()

    def predicate(self) -> str:
        """Match on record_id within the chunk's own partitions (a literal, so the merge prunes the rest)."""
        keys = f"t.record_id = s.record_id AND t.{PARTITION} = s.{PARTITION}"
        if len(self.dates) > MAX_LISTED_DATES:
            return f"{keys} AND t.{PARTITION} BETWEEN DATE '{min(self.dates)}' AND DATE '{max(self.dates)}'"
        listed = ", ".join(f"DATE '{day}'" for day in sorted(self.dates))
        return f"{keys} AND t.{PARTITION} IN ({listed})"

    def close(self) -> None:
        self.file.close()


def _kept(batches: Iterable[pa.RecordBatch], keep: pa.BooleanArray) -> Iterator[pa.RecordBatch]:
    offset = 0
    for batch in batches:
        yield batch.filter(keep.slice(offset, batch.num_rows))
        offset += batch.num_rows


@dataclass(frozen=True)
class AccountState:
    """The app ids under which the calls table records one account's state (Delta `txn` actions)."""

    provider: str
    account: str

    @property
    def watermark(self) -> str:
        return f"cdrfetch/{self.provider}/{self.account}"

    @property
    def commits(self) -> str:
        """A counter bumped by every state commit: two runs committing at once conflict, one re-runs."""
        return f"{self.watermark}/commits"

    def chunk(self, start: dt.datetime) -> str:
        return f"{self.watermark}/chunk/{to_millis(start)}"

    def read(self, table: DeltaTable) -> dt.datetime | None:
        version = table.transaction_version(self.watermark)
        return None if version is None else from_millis(version)

    def transactions(self, table: DeltaTable, chunk: Chunk) -> list[Transaction]:
        """The state once `chunk` is stored, from `table`'s snapshot: the chunk's marker, the watermark."""
        known = table.transaction_version(self.chunk(chunk.start))
        if known is not None and from_millis(known) > chunk.end:  # an earlier run stored this chunk further
            chunk = replace(chunk, end=from_millis(known))

        def end_of_chunk_at(start: dt.datetime) -> dt.datetime | None:
            end = table.transaction_version(self.chunk(start))
            return None if end is None else from_millis(end)

        watermark = advance(self.read(table), chunk, end_of_chunk_at)
        done = [
            Transaction(app_id=self.chunk(chunk.start), version=to_millis(chunk.end)),
            Transaction(app_id=self.commits, version=(table.transaction_version(self.commits) or 0) + 1),
        ]
        if watermark is not None:
            done.append(Transaction(app_id=self.watermark, version=to_millis(watermark)))
        return done


class DeltaLoad(Load):
    """A pull's writes: every table of each chunk merged on record_id, side tables first, calls last."""

    def __init__(self, places: Mapping[str, Place], upsert: bool) -> None:
        self.places = dict(places)
        self.upsert = upsert

    def store(self, chunk: Chunk, tables: Mapping[str, Iterable[pa.RecordBatch]]) -> dict[str, int]:
        """Merge each table's rows; the state commits with the calls table, so it never runs ahead."""
        order = sorted(tables, key=lambda name: name == "calls")
        stored: dict[str, int] = {}
        for name in order:
            staged = Staged(self.places[name].schema, tables[name])
            try:
                state = AccountState(chunk.provider, chunk.account) if name == "calls" else None
                stored[name] = self._merge(self.places[name], staged, chunk, state)
            finally:
                staged.close()
        return stored

    def _merge(self, place: Place, staged: Staged, chunk: Chunk, state: AccountState | None) -> int:
        """Merge from a fresh snapshot, again after each conflicting concurrent commit (bounded)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with translated(place.uri):
                    return self._attempt(place, staged, chunk, state)
            except CommitFailedError as conflict:
                log.info("%s: commit conflict with a concurrent run (%s), attempt %d", place.uri, conflict, attempt)
                time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # jitter: racers part ways
        raise TemporaryError(
            f"{place.uri}: {ATTEMPTS} commits in a row conflicted with concurrent writers",
            "another run is writing the same table; run again later",
        )

    def _attempt(self, place: Place, staged: Staged, chunk: Chunk, state: AccountState | None) -> int:
        """One merge (and, for the calls table, the state) against the table's latest version."""
        table = place.ready()
        transactions = state.transactions(table, chunk) if state else []
        properties = CommitProperties(app_transactions=transactions)  # delta-rs rebases past unrelated commits
        if state is not None:
            crashpoints.reach(CRASHPOINT)
        inserted = 0
        before = table.version()
        # Rows the snapshot already holds are left out before the merge (unless they are to be updated):
        # a re-run then merges nothing instead of joining the whole chunk against its partitions.
        fresh = None if self.upsert or not staged.rows else staged.fresh(staged.known_ids(table))
        count = staged.rows if fresh is None else int(pc.sum(fresh).as_py() or 0)
        if count == staged.rows:
            fresh = None  # none known: every row goes to the merge as staged
        if count:
            merger = table.merge(
                staged.reader(fresh), staged.predicate(), source_alias="s", target_alias="t",
                max_spill_size=MERGE_MEMORY, commit_properties=properties,
            )  # fmt: skip
            if self.upsert:
                merger = merger.when_matched_update_all()
            inserted = int(merger.when_not_matched_insert_all().execute()["num_target_rows_inserted"])
        if transactions and table.version() == before:  # nothing to write (an empty or a repeated chunk)
            table.create_write_transaction(
                [], mode="append", schema=table.schema(), partition_by=[PARTITION], commit_properties=properties
            )
        return inserted
