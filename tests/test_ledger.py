from __future__ import annotations

import hashlib
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cdrfetch import ledger as ledger_module
from cdrfetch.errors import ConfigError
from cdrfetch.fingerprints import SEGMENT_ENTRIES, FingerprintSet, of_ids
from cdrfetch.ledger import ID_HORIZON, SCHEMA_VERSION, Key, Ledger
from cdrfetch.summary import ChunkResult, RunSummary

KEY = Key("demo", "default", "acct")
UTC = timezone.utc


def summary(start: datetime, end: datetime, code: int = 0) -> RunSummary:
    done = RunSummary("demo", "acct", "default", start.isoformat(), end.isoformat())
    done.chunks.append(ChunkResult("c", start.isoformat(), end.isoformat(), "ok"))
    done.finish(code)
    return done


def test_resume_point_is_the_furthest_complete_end(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    assert ledger.resume_point(KEY) is None
    jan, feb = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    ledger.record(KEY, summary(jan, feb), feb, {"calls": FingerprintSet.of_ids(["a"])})
    ledger.record(KEY, summary(jan, jan + timedelta(days=1), 69), None, {})  # a failed run does not move it back
    assert ledger.resume_point(KEY) == feb
    assert ledger.resume_point(Key("demo", "default", "other")) is None
    assert [r["outcome"] for r in ledger.runs()] == ["failed", "ok"]


def test_written_ids_are_kept_only_within_the_horizon(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    day = jan + timedelta(days=1)
    ledger.record(KEY, summary(jan, day), day, {"calls": FingerprintSet.of_ids(["old"])})
    assert held(ledger.written_since(KEY, jan)) == {"calls": {"old"}}
    assert ledger.written_since(KEY, day) == {}  # that run's window ended there: it cannot overlap
    later = day + ID_HORIZON + timedelta(hours=1)
    ledger.record(KEY, summary(later, later + timedelta(days=1)), later + timedelta(days=1), ids(calls=["new"]))
    assert held(ledger.written_since(KEY, jan)) == {"calls": {"new"}}


CANDIDATES = ["old", "new", "a", "b", "", *(hashlib.sha1(str(n).encode()).hexdigest() for n in range(5))]


def ids(**tables: list[str]) -> dict[str, FingerprintSet]:
    """Sets as a run builds them: one batch at a time (here one id a batch)."""
    found = {table: FingerprintSet() for table in tables}
    for table, values in tables.items():
        for value in values:
            found[table].first_sightings(of_ids([value]))
    return found


def held(found: dict[str, FingerprintSet]) -> dict[str, set[str]]:
    """Which of CANDIDATES each table's set holds."""
    return {
        table: {rid for rid, hit in zip(CANDIDATES, fps.contains(of_ids(CANDIDATES)), strict=True) if hit}
        for table, fps in found.items()
    }


def test_written_ids_of_overlapping_runs_and_several_parts_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cdrfetch.fingerprints.SEGMENT_ENTRIES", 2)  # several parts per run and table
    ledger = Ledger(tmp_path / "l.sqlite3")
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    many = CANDIDATES[5:]
    ledger.record(KEY, summary(jan, jan + timedelta(days=2)), None, ids(calls=many, recordings=["a"]))
    ledger.record(KEY, summary(jan, jan + timedelta(days=3)), None, ids(calls=["b", many[0]]))
    ledger.record(Key("demo", "default", "other"), summary(jan, jan + timedelta(days=3)), None, ids(calls=["old"]))
    with sqlite3.connect(tmp_path / "l.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM written_fingerprints WHERE output_table='calls'").fetchone()[0] == 5
    assert held(ledger.written_since(KEY, jan + timedelta(days=1))) == {"calls": {*many, "b"}, "recordings": {"a"}}
    assert held(ledger.written_since(KEY, jan + timedelta(days=2))) == {"calls": {"b", many[0]}}
    assert SEGMENT_ENTRIES > 2  # the patch did not leak into the module's own constant


V1_SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, provider TEXT NOT NULL, profile TEXT NOT NULL, account TEXT NOT NULL,
    window_start TEXT NOT NULL, window_end TEXT NOT NULL, complete_until TEXT, finished_at TEXT NOT NULL,
    duration_s REAL NOT NULL, outcome TEXT NOT NULL, exit_code INTEGER NOT NULL, records TEXT NOT NULL,
    files TEXT NOT NULL, checksum TEXT, retries INTEGER NOT NULL, warnings TEXT NOT NULL
);
CREATE INDEX runs_key ON runs (provider, profile, account, complete_until);
CREATE TABLE written_ids (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    output_table TEXT NOT NULL,
    record_id TEXT NOT NULL
);
CREATE INDEX written_ids_run ON written_ids (run_id);
"""


def old_ledger(path: Path, written: dict[str, list[str]]) -> datetime:
    """A ledger as cdrfetch's schema 1 wrote it: one run (Jan 1-2) and a written_ids row per id."""
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
        db.execute(
            "INSERT INTO runs VALUES (1, 'demo', 'default', 'acct', ?, ?, ?, ?, 1, 'ok', 0, '{}', '[]', NULL, 0, '[]')",
            (jan.isoformat(), (jan + timedelta(days=1)).isoformat(), (jan + timedelta(days=1)).isoformat(), "x"),
        )
        rows = [(1, table, rid) for table, rids in written.items() for rid in rids]
        db.executemany("INSERT INTO written_ids VALUES (?, ?, ?)", rows)
        db.execute("PRAGMA user_version = 1")
    return jan


def test_an_old_ledger_is_migrated_and_its_ids_still_dedup(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    sha = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(3)]
    jan = old_ledger(path, {"calls": [*sha, "a"], "recordings": ["b"]})
    ledger = Ledger(path)
    assert ledger.resume_point(KEY) == jan + timedelta(days=1)  # the run itself survives
    already = ledger.written_since(KEY, jan)
    assert held(already) == {"calls": {*sha, "a"}, "recordings": {"b"}}
    batch = [sha[1], "new", "a", "new", sha[0]]
    assert FingerprintSet().first_sightings(of_ids(batch), already["calls"]).tolist() == [
        False, True, False, False, False,
    ]  # fmt: skip
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "written_ids" not in tables and "written_fingerprints" in tables


def test_a_failed_migration_leaves_the_old_ledger_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "l.sqlite3"
    old_ledger(path, {"calls": ["a", "b"]})

    def broken(ids: object) -> FingerprintSet:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(FingerprintSet, "of_ids", staticmethod(broken))
    with pytest.raises(ConfigError, match="disk I/O error"):
        Ledger(path).check()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM written_ids").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='written_fingerprints'").fetchone()[0] == 0
    monkeypatch.undo()
    assert held(Ledger(path).written_since(KEY, datetime(2024, 1, 1, tzinfo=UTC))) == {"calls": {"a", "b"}}
    assert ledger_module.SCHEMA_VERSION == 2


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="newer cdrfetch"):
        Ledger(path).runs()


def test_runs_starting_at_once_migrate_an_old_ledger_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "l.sqlite3"
    jan = old_ledger(path, {"calls": ["a", "b"]})
    with ThreadPoolExecutor(6) as pool:
        found = list(pool.map(lambda _: held(Ledger(path).written_since(KEY, jan)), range(6)))
    assert found == [{"calls": {"a", "b"}}] * 6
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM written_fingerprints").fetchone()[0] == 1
