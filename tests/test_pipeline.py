"""The pipeline with a provider defined here: chunk isolation, dedup, atomic outputs, exit codes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest

from cdrfetch import records
from cdrfetch.client import Client
from cdrfetch.destinations import Where
from cdrfetch.destinations.files import Files
from cdrfetch.errors import AuthError, ExitCode, PartialResultError, UnavailableError
from cdrfetch.fingerprints import FingerprintSet, of_ids
from cdrfetch.pipeline import Services, pull
from cdrfetch.providers.base import COMMON_SETTINGS, Provider, Setting
from cdrfetch.summary import RunSummary
from cdrfetch.testing.harness import read_rows
from cdrfetch.windows import Window

UTC = timezone.utc
START = datetime(2024, 1, 1, tzinfo=UTC)
RECORDINGS = records.side_table(pa.field("file", pa.string()))


class Scripted(Provider):
    """Yields two rows per chunk (one repeated across chunks); fails where told."""

    name = "scripted"
    title = "Scripted"
    account_setting = "account"
    settings = (Setting("account", "id"),)
    max_window = timedelta(days=1)

    @classmethod
    def output_tables(cls) -> dict[str, pa.Schema]:
        return {"calls": records.CALLS, "recordings": RECORDINGS}

    failures: ClassVar[dict[int, Exception]] = {}

    def fetch(self, chunk: Window) -> Iterator[records.Batch]:
        day = (chunk.start - START).days
        rows = [row(f"day{day}", chunk.start), row("shared", START)]
        yield from records.batches("calls", records.CALLS, rows)
        if day in self.failures:  # fails after yielding: the chunk's rows must not be written
            raise self.failures[day]
        yield from records.batches("recordings", RECORDINGS, [{**rows[0], "file": f"{day}.wav"}])


def row(rid: str, start: datetime) -> dict[str, Any]:
    return {
        "provider": "scripted", "account": "acct", "record_id": rid, "call_id": rid, "start_time": start,
        "direction": "unknown", "extra": "{}",
    }  # fmt: skip


def run(
    tmp_path: Path, failures: dict[int, Exception], days: int = 3, fmt: str = "jsonl", **kw: Any
) -> tuple[RunSummary, Path]:
    Scripted.failures = failures
    summary = RunSummary("scripted", "acct", "default", "", "")
    settings = {s.name: s.default for s in COMMON_SETTINGS} | {"account": "acct", "timeout": 1, "retries": 0}
    out = tmp_path / f"out.{fmt}"
    with Client(settings, log=logging.getLogger("t"), summary=summary) as client:
        services = Services(summary, client.progress, client.scratch())
        window = Window(START, START + timedelta(days=days))
        written = pull(Scripted(settings, client), window, services, Files(str(out), fmt), **kw)
    if written.partial is not None:
        raise written.partial
    assert holds_exactly(written.ids["calls"], [r["record_id"] for r in read_rows(out, fmt)])
    return summary, out


def holds_exactly(found: FingerprintSet, ids: list[str]) -> bool:
    return len(found) == len(set(ids)) and bool(found.contains(of_ids(ids)).all())


def test_rows_are_deduplicated_across_chunks_and_side_tables_written(tmp_path: Path) -> None:
    summary, out = run(tmp_path, {}, allow_partial=False)
    assert [r["record_id"] for r in read_rows(out, "jsonl")] == ["day0", "shared", "day1", "day2"]
    assert summary.duplicates_dropped == 2
    assert [r["file"] for r in read_rows(tmp_path / "out.recordings.jsonl", "jsonl")] == ["0.wav", "1.wav", "2.wav"]
    assert {f["table"] for f in summary.files} == {"calls", "recordings"}
    assert all(len(f["sha256"]) == 64 for f in summary.files)


def test_ids_written_by_an_earlier_run_are_skipped_and_counted(tmp_path: Path) -> None:
    already = {"calls": FingerprintSet.of_ids(["shared", "day9"]), "recordings": FingerprintSet.of_ids(["day1"])}
    summary, out = run(tmp_path, {}, allow_partial=False, already=already)
    assert [r["record_id"] for r in read_rows(out, "jsonl")] == ["day0", "day1", "day2"]
    assert [r["file"] for r in read_rows(tmp_path / "out.recordings.jsonl", "jsonl")] == ["0.wav", "2.wav"]
    assert summary.duplicates_dropped == 3 + 1
    assert summary.records == {"calls": 3, "recordings": 2}


def test_a_failed_chunk_leaves_no_rows_and_makes_the_run_partial(tmp_path: Path) -> None:
    with pytest.raises(PartialResultError) as caught:
        run(tmp_path, {1: UnavailableError("boom", "later")}, allow_partial=True)
    assert caught.value.exit_code == ExitCode.PARTIAL
    rows = read_rows(tmp_path / "out.jsonl", "jsonl")
    assert [r["record_id"] for r in rows] == ["day0", "shared", "day2"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_a_first_chunk_failing_while_streamed_leaves_no_row_and_hides_none(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first chunk goes straight into the files (nothing is in them yet): when it fails half way,
    # the files start afresh, and its ids ("shared") must not keep a later chunk's rows out.
    monkeypatch.setattr("cdrfetch.spool.BATCH_ROWS", 1)  # each batch reaches the files at once
    with pytest.raises(PartialResultError):
        run(tmp_path, {0: UnavailableError("boom", "later")}, fmt=fmt, allow_partial=True)
    assert [r["record_id"] for r in read_rows(tmp_path / f"out.{fmt}", fmt)] == ["day1", "shared", "day2"]
    assert [r["file"] for r in read_rows(tmp_path / f"out.recordings.{fmt}", fmt)] == ["1.wav", "2.wav"]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([f"out.{fmt}", f"out.recordings.{fmt}"])


def test_every_chunk_failing_writes_nothing_and_keeps_the_error(tmp_path: Path) -> None:
    with pytest.raises(UnavailableError):
        run(tmp_path, dict.fromkeys(range(3), UnavailableError("down", "later")), allow_partial=False)
    assert list(tmp_path.iterdir()) == []


def test_auth_errors_stop_the_run_at_once(tmp_path: Path) -> None:
    with pytest.raises(AuthError):
        run(tmp_path, {0: AuthError("bad sig", "check secret")}, days=3, allow_partial=False)
    assert list(tmp_path.iterdir()) == []


def targets(output: str, fmt: str, where: Where, tables: dict[str, pa.Schema], layout: str | None = None) -> Any:
    return Files(output, fmt, *([layout] if layout else [])).targets(tables, where)


def test_output_layout_is_deterministic(tmp_path: Path) -> None:
    tables = {"calls": records.CALLS, "recordings": RECORDINGS}
    where = Where("huawei-cec", "AK/../x", "2024-01-01", START)
    found = targets(str(tmp_path) + "/", "csv", where, tables)
    assert found["calls"] == f"{tmp_path}/huawei-cec/AK_.._x/2024-01-01.csv"
    assert found["recordings"] == f"{tmp_path}/huawei-cec/AK_.._x/2024-01-01.recordings.csv"
    assert targets("-", "csv", where, tables) == {"calls": None}
    plain = Where("p", "a", "l", START)
    # a name without a suffix is a directory (it would otherwise become a file named like one)
    assert targets(str(tmp_path / "newdir"), "csv", plain, {"calls": records.CALLS}) == {
        "calls": f"{tmp_path}/newdir/p/a/l.csv"
    }
    assert targets("x/calls.parquet", "parquet", plain, {"calls": records.CALLS}) == {"calls": "x/calls.parquet"}


def test_layout_places_files_hive_style_and_refuses_escapes(tmp_path: Path) -> None:
    hive = "{provider}/{account}/date={date}/{label}.{ext}"
    where = Where("laaffic", "key 1", "2024-01-01", datetime(2024, 1, 1, tzinfo=UTC))
    assert targets("s3://lake/raw/", "parquet", where, {"calls": records.CALLS}, hive) == {
        "calls": "s3://lake/raw/laaffic/key_1/date=2024-01-01/2024-01-01.parquet"
    }
    from cdrfetch.errors import ConfigError

    for bad in ("/abs/{label}.{ext}", "../{label}.{ext}", "{label}.csv", "{nope}/{label}.{ext}", "{label"):
        with pytest.raises(ConfigError):
            Files(str(tmp_path) + "/", "csv", bad)


def test_the_spool_joins_small_batches_in_order(tmp_path: Path) -> None:
    from cdrfetch.spool import Spool

    spool = Spool(tmp_path)
    rows = [row(f"r{n}", START) for n in range(records.BATCH_ROWS + 10)]
    for one in rows[:300]:  # a provider yielding a row at a time
        spool.add(next(records.batches("calls", records.CALLS, [one])))
    spool.add(records.Batch("calls", pa.RecordBatch.from_pylist(rows[300:], schema=records.CALLS)))
    spool.add(next(records.batches("recordings", RECORDINGS, [{**rows[0], "file": "a.wav"}])))
    spool.close()
    calls = list(spool.replay("calls"))
    assert [b.num_rows for b in calls] == [records.BATCH_ROWS + 10]  # 300 + the rest: one write
    assert pa.Table.from_batches(calls).column("record_id").to_pylist() == [r["record_id"] for r in rows]
    assert [b.num_rows for b in spool.replay("recordings")] == [1]  # the remainder is written on close
    spool.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_discarded_spool_writes_nothing_it_held(tmp_path: Path) -> None:
    from cdrfetch.spool import Spool

    spool = Spool(tmp_path)
    spool.add(next(records.batches("calls", records.CALLS, [row("x", START)])))
    spool.discard()
    assert list(spool.replay("calls")) == [] and list(tmp_path.iterdir()) == []
