"""Delta Lake tables (`--format delta -o DIR` or `-o s3://bucket/prefix/`), written with deltalake (delta-rs).

One table per output table under the URL: `<url>/calls`, `<url>/recordings`, `<url>/conferences`.
Each holds exactly the columns of its Arrow schema (records.CALLS, the side tables), in order, plus
ONE trailing partition column `start_date` (date32: the UTC date of start_time), so a reader that
asks for a day reads that day's files only. A table is created on first use; an older one with
fewer trailing columns gets the new columns (nullable) added after `start_date`, where Delta adds
columns; a table of any other shape is refused (78).

Each complete chunk is merged on `record_id` (within the chunk's own `start_date` partitions),
inserting only what is not there yet (`upsert: true` also updates the rows that are): a record
pulled twice is stored once. Side tables are merged first and the calls table last; the calls
table's commit carries the account's state as Delta transaction ids (`txn` actions, which every
Delta reader keeps and ignores): `cdrfetch/<provider>/<account>` = the watermark in epoch ms, and
`cdrfetch/<provider>/<account>/chunk/<start ms>` = the end of each stored chunk. So the state never
runs ahead of any table, `--since-last` resumes from the table on any machine, and a chunk that
adds no rows still commits its state (an empty commit). Two runs committing the same account at
once conflict (delta-rs refuses the second commit); the loser re-runs its merge from a fresh
snapshot, up to 10 times with jittered backoff, then gives up with 75.

S3: commits need put-if-absent for `_delta_log/N.json`. delta-rs 1.x has no DynamoDB lock; it uses
S3's conditional writes (`If-None-Match`), which AWS S3, MinIO, R2 and moto honour. cdrfetch sets
`conditional_put: etag` by default for s3:// so that stays true whatever the library's default,
unless the destination's storage_options (or the environment) already choose: conditional_put,
AWS_S3_LOCKING_PROVIDER or AWS_S3_ALLOW_UNSAFE_RENAME. Everything else comes from storage_options
(verbatim) and the standard AWS variables, which delta-rs reads itself (AWS_ENDPOINT_URL, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import pyarrow as pa
from deltalake import DeltaTable

from cdrfetch.destinations.base import Destination, Load, Where
from cdrfetch.destinations.delta.load import AccountState, DeltaLoad
from cdrfetch.destinations.delta.storage import Place, storage_options, translated
from cdrfetch.destinations.named import Named
from cdrfetch.errors import ConfigError

__all__ = ["DeltaTables"]
LOCAL_SCHEME = "file://"


class DeltaTables(Destination):
    """Delta tables under `url` (a local directory or an object URL)."""

    keeps_state: ClassVar[bool] = True

    def __init__(self, url: str, options: Mapping[str, Any] | None = None, *, upsert: bool = False) -> None:
        if url.startswith(LOCAL_SCHEME):
            url = url[len(LOCAL_SCHEME) :] or "/"
        self.remote = "://" in url
        self.url = url.rstrip("/") if self.remote else os.path.abspath(url)
        self.options = storage_options(url, options or {})
        self.upsert = upsert

    @classmethod
    def from_named(cls, spec: Named) -> DeltaTables:
        return cls(spec.url, spec.storage_options, upsert=spec.upsert)

    def describe(self) -> str:
        return f"Delta tables in {self.url}/"

    def place(self, table: str, schema: pa.Schema) -> Place:
        return Place(table, f"{self.url}/{table}", schema, self.options)

    def open(self, tables: Mapping[str, pa.Schema], where: Where) -> Load:
        places = {name: self.place(name, schema) for name, schema in tables.items()}
        for place in places.values():
            place.ready()  # created or checked now: an incompatible table stops the run before any fetch
        return DeltaLoad(places, self.upsert)

    def resume_point(self, provider: str, account: str) -> datetime | None:
        from cdrfetch.records import CALLS

        table = self.place("calls", CALLS).open()
        return None if table is None else AccountState(provider, account).read(table)

    def check(self, tables: Mapping[str, pa.Schema]) -> str:
        """`doctor`: each table reachable and compatible (a missing one will be created, an older one evolved)."""
        notes = []
        for name, schema in tables.items():
            place = self.place(name, schema)
            table = place.open()
            if table is None:
                notes.append(f"{name} will be created")
                continue
            added = place.missing_columns(table)
            notes.append(f"{name} at version {table.version()}" + (f", {len(added)} column(s) to add" if added else ""))
        return f"{self.describe()}: " + "; ".join(notes)

    def maintain(self, dry_run: bool = True, retention_hours: int = 168) -> list[str]:
        """Compact small files and vacuum what no version younger than `retention_hours` references.

        Every chunk adds a few small Parquet files; `optimize.compact` rewrites each partition's into
        larger ones (a commit readers never notice), and `vacuum` deletes files that no version
        within the retention references (older versions then cannot be read: time travel ends
        there). With `dry_run` (the default) nothing changes: the lines say what would be compacted
        and list every file vacuum would delete. Returns one line per table, then one per file.
        Retention below the table's `delta.deletedFileRetentionDuration` (7 days) is refused (78).
        """
        from cdrfetch.records import CALLS

        lines: list[str] = []
        for name in ("calls", "recordings", "conferences"):
            place = self.place(name, CALLS)
            table = place.open()
            if table is None:
                continue
            with translated(place.uri):
                lines += _maintain_one(place.uri, table, dry_run, retention_hours)
        return lines


def _maintain_one(uri: str, table: DeltaTable, dry_run: bool, retention_hours: int) -> list[str]:
    files = len(table.file_uris())
    if not dry_run:  # a retention the table refuses must fail before anything is compacted
        _maintain_one(uri, table, True, retention_hours)
    if dry_run:
        summary = f"{uri}: {files} data files; would compact small files"
    else:
        metrics = table.optimize.compact()
        summary = f"{uri}: compacted {metrics['numFilesRemoved']} files into {metrics['numFilesAdded']}"
    try:
        deleted = table.vacuum(retention_hours, dry_run=dry_run, enforce_retention_duration=True)
    except Exception as exc:  # delta-rs refuses a retention below the table's own with a plain exception
        if "retention" not in str(exc).lower():
            raise
        raise ConfigError(f"{uri}: {exc}", "use --retention-hours 168 or more") from None
    verb = "would delete" if dry_run else "deleted"
    return [f"{summary}; vacuum {verb} {len(deleted)} files older than {retention_hours} h", *deleted]
