from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from cdrfetch.ledger import ID_HORIZON, Key, Ledger
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
    ledger.record(KEY, summary(jan, feb), feb, {"calls": ["a"]})
    ledger.record(KEY, summary(jan, jan + timedelta(days=1), 69), None, {})  # a failed run does not move it back
    assert ledger.resume_point(KEY) == feb
    assert ledger.resume_point(Key("demo", "default", "other")) is None
    assert [r["outcome"] for r in ledger.runs()] == ["failed", "ok"]


def test_written_ids_are_kept_only_within_the_horizon(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    ledger.record(KEY, summary(jan, jan + timedelta(days=1)), jan + timedelta(days=1), {"calls": ["old"]})
    assert ledger.written_since(KEY, jan) == {"calls": {"old"}}
    later = jan + timedelta(days=1) + ID_HORIZON + timedelta(hours=1)
    ledger.record(KEY, summary(later, later + timedelta(days=1)), later + timedelta(days=1), {"calls": ["new"]})
    assert ledger.written_since(KEY, jan) == {"calls": {"new"}}


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from cdrfetch.errors import ConfigError

    path = tmp_path / "l.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="newer cdrfetch"):
        Ledger(path).runs()
