"""The run ledger: an embedded SQLite database of every pull, for --since-last and `runs`.

A run is recorded in one transaction, only after its output files were renamed into place, so the
ledger never claims data that is not on disk. `complete_until` is the end of the leading chunks
that all succeeded: --since-last resumes there (minus a lookback for late records), and the
record ids written by recent runs let that overlap be pulled again without writing duplicates.
Those ids are kept as 128-bit fingerprints (cdrfetch.fingerprints), a few sorted blobs per run and
table rather than a row per id: a million ids are 16 MB, written in one statement.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdrfetch.errors import ConfigError
from cdrfetch.files import data_dir
from cdrfetch.summary import RunSummary

if TYPE_CHECKING:  # imported where used: `cdrfetch runs` needs neither numpy nor pyarrow
    from cdrfetch.fingerprints import FingerprintSet

# 1: one written_ids row per record id. 2: written_fingerprints, sorted fingerprint blobs.
SCHEMA_VERSION = 2
# Written record ids are kept for runs that ended at most this long before the newest run's window:
# enough for any sensible --since-last lookback, and the table stays bounded over years of runs.
ID_HORIZON = timedelta(days=31)
_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    profile TEXT NOT NULL,
    account TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    complete_until TEXT,
    finished_at TEXT NOT NULL,
    duration_s REAL NOT NULL,
    outcome TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    records TEXT NOT NULL,
    files TEXT NOT NULL,
    checksum TEXT,
    retries INTEGER NOT NULL,
    warnings TEXT NOT NULL
);
CREATE INDEX runs_key ON runs (provider, profile, account, complete_until);
"""
# Each part holds sorted 16-byte big-endian fingerprints (FingerprintSet.parts), at most a few MB.
_FINGERPRINTS = """
CREATE TABLE written_fingerprints (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    output_table TEXT NOT NULL,
    part INTEGER NOT NULL,
    fingerprints BLOB NOT NULL,
    PRIMARY KEY (run_id, output_table, part)
)
"""


@dataclass(frozen=True)
class Key:
    """Whose runs: one provider account in one profile."""

    provider: str
    profile: str
    account: str


def default_path() -> Path:
    """$CDRFETCH_LEDGER, else ledger.sqlite3 in $CDRFETCH_DATA_DIR or the user data dir."""
    if os.environ.get("CDRFETCH_LEDGER"):
        return Path(os.environ["CDRFETCH_LEDGER"]).expanduser()
    return data_dir() / "ledger.sqlite3"


class Ledger:
    """Access to the ledger database (created and migrated on first use)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def check(self) -> Ledger:
        """Open, migrate and validate now, before any request: a bad ledger fails the run (78) up front."""
        with self._connect() as db:
            db.execute("SELECT count(*) FROM runs").fetchone()
        return self

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with closing(sqlite3.connect(self.path, timeout=30)) as db:
                db.execute("PRAGMA foreign_keys = ON")
                self._migrate(db)
                with db:  # one transaction: committed on success, rolled back on error
                    yield db
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"run ledger {self.path}: {exc}", "move the file aside or set CDRFETCH_LEDGER") from None

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(f"run ledger {self.path} is from a newer cdrfetch (schema {version})", "upgrade cdrfetch")
        if version == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")  # one creator or migrator when several runs (pull --all) start at once
        try:
            locked = db.execute("PRAGMA user_version").fetchone()[0]
            if locked == 0:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(_FINGERPRINTS)
            elif locked == 1:
                _ids_to_fingerprints(db)
            if locked in (0, 1):
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.commit()
        except BaseException:
            db.rollback()  # DDL and user_version are transactional in SQLite: the old schema stays whole
            raise
        if locked not in (0, 1):  # another run was first (this version's schema, or a newer one: refused)
            self._migrate(db)

    def record(
        self, key: Key, summary: RunSummary, complete_until: datetime | None, written: Mapping[str, FingerprintSet]
    ) -> int:
        """Store a finished run (and the ids it wrote) in one transaction; returns its id."""
        checksums = "".join(str(f.get("sha256", "")) for f in summary.files)
        data = summary.to_dict()  # secrets masked
        row = (
            key.provider, key.profile, key.account, summary.window_start, summary.window_end,
            complete_until.isoformat() if complete_until else None, _now(), summary.duration_s,
            _outcome(summary.exit_code), summary.exit_code, json.dumps(data["records"]), json.dumps(data["files"]),
            _sha256(checksums) if checksums else None, summary.retries, json.dumps(data["warnings"]),
        )  # fmt: skip
        with self._connect() as db:
            cursor = db.execute(f"INSERT INTO runs VALUES (NULL{', ?' * len(row)})", row)
            run_id = int(cursor.lastrowid or 0)
            rows = (
                (run_id, table, part, blob) for table, ids in written.items() for part, blob in enumerate(ids.parts())
            )
            db.executemany("INSERT INTO written_fingerprints VALUES (?, ?, ?, ?)", rows)
            horizon = datetime.fromisoformat(summary.window_start) - ID_HORIZON
            db.execute(  # ids of runs that ended long before this window can no longer overlap a new one
                "DELETE FROM written_fingerprints WHERE run_id IN (SELECT id FROM runs WHERE provider=? AND profile=? "
                "AND account=? AND window_end < ?)",
                (key.provider, key.profile, key.account, horizon.isoformat()),
            )
        return run_id

    def resume_point(self, key: Key) -> datetime | None:
        """The end of the last completed window of `key` (None: never ran)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT MAX(complete_until) FROM runs WHERE provider=? AND profile=? AND account=?",
                (key.provider, key.profile, key.account),
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def written_since(self, key: Key, start: datetime) -> dict[str, FingerprintSet]:
        """Per table, the record ids written by runs of `key` whose window reached past `start`."""
        from cdrfetch.fingerprints import FingerprintSet

        with self._connect() as db:
            rows = db.execute(
                "SELECT w.output_table, w.fingerprints FROM written_fingerprints w JOIN runs r ON r.id = w.run_id "
                "WHERE r.provider=? AND r.profile=? AND r.account=? AND r.window_end > ? ORDER BY w.output_table",
                (key.provider, key.profile, key.account, start.isoformat()),
            )
            # streamed: each blob is turned into arrays and let go before the next one is read
            return {
                table: FingerprintSet.from_parts(blob for _, blob in group)
                for table, group in itertools.groupby(rows, key=lambda row: str(row[0]))
            }

    def runs(self, provider: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first (all providers, or one)."""
        query = "SELECT * FROM runs" + (" WHERE provider=?" if provider else "") + " ORDER BY id DESC LIMIT ?"
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(query, (provider, limit) if provider else (limit,)).fetchall()
        return [_decoded(dict(row)) for row in rows]

    def reset(self, key: Key) -> int:
        """Forget every run of `key`; returns how many were removed."""
        with self._connect() as db:
            cursor = db.execute(
                "DELETE FROM runs WHERE provider=? AND profile=? AND account=?",
                (key.provider, key.profile, key.account),
            )
            return cursor.rowcount


def _ids_to_fingerprints(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: each run's written_ids rows become its fingerprint parts (in the caller's transaction)."""
    from cdrfetch.fingerprints import FingerprintSet

    db.execute(_FINGERPRINTS)
    groups = db.execute("SELECT DISTINCT run_id, output_table FROM written_ids").fetchall()
    for run_id, table in groups:  # one run's ids in memory at a time
        ids = db.execute("SELECT record_id FROM written_ids WHERE run_id=? AND output_table=?", (run_id, table))
        parts = enumerate(FingerprintSet.of_ids(rid for (rid,) in ids).parts())
        db.executemany(
            "INSERT INTO written_fingerprints VALUES (?, ?, ?, ?)", ((run_id, table, n, blob) for n, blob in parts)
        )
    db.execute("DROP TABLE written_ids")


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for column in ("records", "files", "warnings"):
        row[column] = json.loads(row[column])
    return row


def _outcome(exit_code: int) -> str:
    return {0: "ok", 3: "partial"}.get(exit_code, "failed")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()
