"""Delta Lake tables (`--format delta`): local directories and moto's S3 server, through the real CLI and
the Youlianyun sandbox, and `Load.store` directly where the order of chunks is the point.

Each record once (merge on record_id) across re-runs, concurrent runs and SIGKILL; the state in the
calls table's own commits (--since-last from the table, gaps never closed by out-of-order chunks);
the schema contract (refusal, evolution); three independent readers; a standard protocol."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, Schema

from cdrfetch.destinations.base import Chunk, Where
from cdrfetch.destinations.delta import DeltaTables
from cdrfetch.destinations.delta.load import CRASHPOINT
from cdrfetch.errors import ConfigError
from cdrfetch.records import CALLS
from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import ExpectedCall
from cdrfetch.testing.harness import projection, run_cli
from cdrfetch.windows import Window, zone
from tests.s3_server import S3

SHANGHAI = zone("Asia/Shanghai")
DAY = "2026-11-30"
UTC = timezone.utc
COLUMNS = [*CALLS.names, "start_date"]
DAY_ONE = datetime(2024, 3, 1, tzinfo=timezone.utc)
ACCOUNT = emulator_class("youlianyun")().profile("http://127.0.0.1")["account_sid"]


def expected(first: str, last: str) -> collections.Counter[ExpectedCall]:
    """The emulator's own account of the calls of Shanghai days first..last (inclusive)."""
    start = datetime.fromisoformat(first).replace(tzinfo=SHANGHAI)
    end = datetime.fromisoformat(last).replace(tzinfo=SHANGHAI) + timedelta(days=1)
    return collections.Counter(emulator_class("youlianyun")().expected_calls(Window(start, end, SHANGHAI)))


def pull(profile: Path, out: str, *args: str) -> Any:
    return run_cli("youlianyun", "pull", "--config", str(profile), "--format", "delta", "-o", out, "-q", *args)


def rows_of(uri: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = DeltaTable(uri).to_pyarrow_table().to_pylist()
    return rows


def assert_once(rows: list[dict[str, Any]]) -> None:
    ids = [row["record_id"] for row in rows]
    assert len(ids) == len(set(ids)), collections.Counter(ids).most_common(3)


def test_a_pull_lands_in_a_standard_table_every_reader_reads_alike(profile: Path, tmp_path: Path) -> None:
    import pandas as pd
    import polars as pl

    result = pull(profile, str(tmp_path / "lake"), "--date", DAY)
    assert result.exit_code == 0, result.stderr
    table = DeltaTable(str(tmp_path / "lake" / "calls"))
    arrow = table.to_pyarrow_table()
    assert arrow.column_names == COLUMNS and table.metadata().partition_columns == ["start_date"]
    assert projection(arrow.to_pylist()) == expected(DAY, DAY) and arrow.num_rows > 0
    assert all(row["start_date"] == row["start_time"].astimezone(UTC).date() for row in arrow.to_pylist())
    key = ["record_id", "start_time", "duration_s", "cost"]
    ours = sorted(tuple(row[k] for k in key) for row in arrow.select(key).to_pylist())
    frame = pl.read_delta(str(tmp_path / "lake" / "calls")).select(key).to_arrow()
    assert frame.column_names == key and sorted(tuple(r[k] for k in key) for r in frame.to_pylist()) == ours
    pandas = DeltaTable(str(tmp_path / "lake" / "calls")).to_pandas()
    assert list(pandas.columns) == COLUMNS and len(pandas) == arrow.num_rows
    assert set(pandas["record_id"]) == {row[0] for row in ours} and isinstance(pandas, pd.DataFrame)
    # What Spark's Delta reader supports: reader 1, writer 2, no table features.
    protocol = table.protocol()
    assert protocol.min_reader_version == 1 and protocol.min_writer_version == 2
    assert not protocol.reader_features and not protocol.writer_features


def test_a_rerun_adds_nothing_and_still_commits_the_state(profile: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "lake")
    assert pull(profile, out, "--from", "2026-11-28", "--to", "2026-12-01").exit_code == 0
    first = rows_of(f"{out}/calls")
    summary = tmp_path / "summary.json"
    again = pull(profile, out, "--from", "2026-11-28", "--to", "2026-12-01", "--summary-json", str(summary))
    assert again.exit_code == 0, again.stderr
    assert sorted(r["record_id"] for r in rows_of(f"{out}/calls")) == sorted(r["record_id"] for r in first)
    import json

    report = json.loads(summary.read_text())
    assert report["records"] == {"calls": 0} and report["duplicates_dropped"] == len(first) > 0
    history = DeltaTable(f"{out}/calls").history(3)  # the re-run's chunks: state-only commits, no files
    assert all(h["operation"] == "WRITE" for h in history)


def test_since_last_resumes_from_the_table_on_any_machine(
    profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = str(tmp_path / "lake")
    monkeypatch.setenv("CDRFETCH_DATA_DIR", str(tmp_path / "machine-a"))
    assert pull(profile, out, "--from", "2026-11-28", "--to", "2026-12-01").exit_code == 0
    account = rows_of(f"{out}/calls")[0]["account"]
    resumed = DeltaTables(out).resume_point("youlianyun", account)
    assert resumed == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    monkeypatch.setenv("CDRFETCH_DATA_DIR", str(tmp_path / "machine-b"))  # no ledger at all here
    summary = tmp_path / "summary.json"
    result = pull(profile, out, "--since-last", "--summary-json", str(summary))
    assert result.exit_code == 0, result.stderr
    import json

    window_start = datetime.fromisoformat(json.loads(summary.read_text())["window_start"])
    assert window_start == resumed - timedelta(hours=1)  # the table's watermark minus the 1h lookback
    assert_once(rows_of(f"{out}/calls"))


def calls(ids: list[str], day: date, cost: str = "1.5") -> pa.RecordBatch:
    """Rows of the calls schema on `day` (UTC), one per id."""
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    n = len(ids)
    values = {
        "provider": ["youlianyun"] * n, "account": ["acct"] * n, "record_id": ids, "call_id": ids,
        "start_time": [start] * n, "end_time": [start] * n, "duration_s": [60] * n, "billed_duration_s": [60] * n,
        "caller": ["1"] * n, "callee": ["2"] * n, "direction": ["outbound"] * n, "call_type": [None] * n,
        "status": [None] * n, "cost": [cost] * n, "currency": ["CNY"] * n, "country": [None] * n,
        "recording_url": [None] * n, "extra": ["{}"] * n,
    }  # fmt: skip
    from decimal import Decimal

    values["cost"] = [Decimal(c) for c in values["cost"]]
    return pa.RecordBatch.from_pydict(values, schema=CALLS)


def day_chunk(day: date, anchor: date) -> Chunk:
    start, begin = (datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (day, anchor))
    return Chunk("youlianyun", "acct", start, start + timedelta(days=1), begin)


def test_chunks_out_of_order_never_make_a_gap_look_complete(tmp_path: Path) -> None:
    lake = DeltaTables(str(tmp_path / "lake"))
    d1, d2, d3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)
    load = lake.open({"calls": CALLS}, Where("youlianyun", "acct", "x", datetime(2024, 3, 1, tzinfo=UTC)))
    assert load.store(day_chunk(d3, d1), {"calls": [calls(["c1", "c2"], d3)]}) == {"calls": 2}
    assert lake.resume_point("youlianyun", "acct") is None  # d1 and d2 are missing
    assert load.store(day_chunk(d1, d1), {"calls": [calls(["a1"], d1)]}) == {"calls": 1}
    assert lake.resume_point("youlianyun", "acct") == datetime(2024, 3, 2, tzinfo=UTC)  # d2 still missing
    assert load.store(day_chunk(d2, d1), {"calls": []}) == {"calls": 0}  # an empty day still counts
    assert lake.resume_point("youlianyun", "acct") == datetime(2024, 3, 4, tzinfo=UTC)  # across d3 at once
    assert load.store(day_chunk(d1, d1), {"calls": [calls(["a1", "a2"], d1)]}) == {"calls": 1}
    assert lake.resume_point("youlianyun", "acct") == datetime(2024, 3, 4, tzinfo=UTC)  # never back
    assert sorted(r["record_id"] for r in rows_of(str(tmp_path / "lake" / "calls"))) == ["a1", "a2", "c1", "c2"]


def test_upsert_updates_a_changed_record_and_plain_merge_keeps_the_first(tmp_path: Path) -> None:
    day = date(2024, 3, 1)
    where = Where("youlianyun", "acct", "x", datetime(2024, 3, 1, tzinfo=UTC))
    for upsert, cost in ((False, "1.500000"), (True, "9.250000")):
        out = tmp_path / f"upsert-{upsert}"
        load = DeltaTables(str(out), upsert=upsert).open({"calls": CALLS}, where)
        load.store(day_chunk(day, day), {"calls": [calls(["r1", "r2"], day, "1.5")]})
        stored = load.store(day_chunk(day, day), {"calls": [calls(["r1"], day, "9.25")]})
        assert stored == {"calls": 0}  # updated, not newly stored
        [row] = [r for r in rows_of(str(out / "calls")) if r["record_id"] == "r1"]
        assert str(row["cost"]) == cost and len(rows_of(str(out / "calls"))) == 2


def test_a_table_of_another_shape_is_refused_and_an_older_one_evolved(profile: Path, tmp_path: Path) -> None:
    other = pa.schema([pa.field("record_id", pa.int64()), pa.field("start_date", pa.date32())])
    DeltaTable.create(str(tmp_path / "other" / "calls"), Schema.from_arrow(other), partition_by=["start_date"])
    refused = pull(profile, str(tmp_path / "other"), "--date", DAY)
    assert refused.exit_code == 78 and "Traceback" not in refused.stderr
    assert "column 1 is record_id long, expected provider string" in refused.stderr, refused.stderr
    with pytest.raises(ConfigError):
        DeltaTables(str(tmp_path / "other")).check({"calls": CALLS})
    assert DeltaTable(str(tmp_path / "other" / "calls")).version() == 0  # untouched

    older = pa.schema([*list(CALLS)[:-2], pa.field("start_date", pa.date32())])  # before recording_url, extra
    DeltaTable.create(str(tmp_path / "old" / "calls"), Schema.from_arrow(older), partition_by=["start_date"])
    assert "2 column(s) to add" in DeltaTables(str(tmp_path / "old")).check({"calls": CALLS})
    evolved = pull(profile, str(tmp_path / "old"), "--date", DAY)
    assert evolved.exit_code == 0, evolved.stderr
    rows = rows_of(str(tmp_path / "old" / "calls"))
    assert projection(rows) == expected(DAY, DAY) and all(row["extra"] is not None for row in rows)
    names = DeltaTable(str(tmp_path / "old" / "calls")).schema().fields
    assert [f.name for f in names] == [*CALLS.names[:-2], "start_date", "recording_url", "extra"]


def test_doctor_check_and_maintenance(profile: Path, tmp_path: Path) -> None:
    lake = DeltaTables(str(tmp_path / "lake"))
    assert "calls will be created" in lake.check({"calls": CALLS})
    assert pull(profile, str(tmp_path / "lake"), "--from", "2026-11-27", "--to", "2026-12-01").exit_code == 0
    table = DeltaTable(str(tmp_path / "lake" / "calls"))
    version, files, rows = table.version(), len(table.file_uris()), table.count()
    assert f"calls at version {version}" in lake.check({"calls": CALLS})
    planned = lake.maintain(dry_run=True)
    assert planned[0].endswith("vacuum would delete 0 files older than 168 h")
    assert DeltaTable(str(tmp_path / "lake" / "calls")).version() == version  # a dry run changes nothing
    lake.maintain(dry_run=False)
    compacted = DeltaTable(str(tmp_path / "lake" / "calls"))
    assert compacted.version() == version + 1 and compacted.count() == rows
    assert len(compacted.file_uris()) < files
    with pytest.raises(ConfigError):
        lake.maintain(dry_run=True, retention_hours=0)


def test_s3_tables_take_each_record_once(s3: S3, profile: Path) -> None:
    lake = s3.url("lake/")
    assert pull(profile, lake, "--date", DAY).exit_code == 0
    again = pull(profile, lake, "--date", DAY)
    assert again.exit_code == 0, again.stderr
    rows = rows_of(s3.url("lake/calls"))
    assert projection(rows) == expected(DAY, DAY) and rows
    assert any(key.startswith("lake/calls/_delta_log/") for key in s3.keys())  # noqa: SIM118 (S3.keys lists the bucket)
    assert DeltaTables(lake).options["conditional_put"] == "etag"  # put-if-absent commits, unless chosen otherwise
    assert "conditional_put" not in DeltaTables(lake, {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}).options


RACE_TO_CREATE = """
import sys, time
import pyarrow as pa
from cdrfetch.destinations.delta.storage import Place, storage_options
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:  # every process reaches the create at the same moment
    pass
Place("calls", url, pa.schema([("record_id", pa.string())]), storage_options(url, {})).ready()
"""


def test_runs_creating_one_s3_table_at_the_same_moment_all_go_on(s3: S3) -> None:
    """Put-if-absent lets one creation win; the losers see a conflict and must use the winner's table."""
    url = s3.url("race/calls")
    start = str(time.time() + 3)
    racers = [subprocess.Popen([sys.executable, "-c", RACE_TO_CREATE, url, start], stderr=subprocess.PIPE, text=True)
              for _ in range(4)]  # fmt: skip
    failures = [err for racer in racers if (err := racer.communicate(timeout=120)[1]) and racer.returncode]
    assert not failures, failures[0]
    table = DeltaTable(url, storage_options={"conditional_put": "etag"})  # the endpoint and keys: from the env
    assert [f.name for f in table.schema().fields] == ["record_id", "start_date"]
    assert table.metadata().partition_columns == ["start_date"]


def test_a_missing_bucket_is_unavailable_in_one_line(s3: S3, profile: Path) -> None:
    result = pull(profile, "s3://no-such-bucket-here/lake/", "--date", DAY)
    assert result.exit_code == 69 and "Traceback" not in result.stderr
    assert "the bucket does not exist" in result.stderr and len(result.stderr.strip().splitlines()) <= 2


@pytest.fixture(scope="module")
def strict_s3(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A moto server that checks credentials (every key is unknown to it), for the rejected-credentials path."""
    from tests.s3_server import running_moto

    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    with running_moto(tmp_path_factory.mktemp("strict-moto"), env) as endpoint:
        yield endpoint


def test_rejected_credentials_are_an_auth_error_without_the_secret(
    s3: S3, strict_s3: str, profile: Path, tmp_path: Path
) -> None:
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
    options = {"aws_endpoint_url": strict_s3, "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": secret}
    text = profile.read_text() + "destinations:\n  lake:\n    url: s3://cdr-lake/tables/\n    format: delta\n"
    text += "    storage_options: {" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}\n"
    profile.write_text(text)
    result = run_cli("youlianyun", "pull", "--config", str(profile), "-o", "lake", "--date", DAY, "-q")
    assert result.exit_code == 77, result.stderr
    assert secret not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_without_deltalake_the_cli_names_the_extra(tmp_path: Path) -> None:
    hide = "import runpy, sys; sys.modules['deltalake'] = None; runpy.run_module('cdrfetch', run_name='__main__')"
    command = [sys.executable, "-c", hide, "youlianyun", "pull", "--sandbox", "--format", "delta",
               "-o", str(tmp_path), "-q"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 78, result.stderr
    assert "pip install 'cdrfetch[delta]'" in result.stderr and "Traceback" not in result.stderr


def cli(out: Path, *args: str, data: Path, crashpoint: str | None = None) -> subprocess.Popen[str]:
    """A real `cdrfetch youlianyun pull --sandbox` process writing Delta tables, with its own data dir."""
    env = {k: v for k, v in os.environ.items() if k != "CDRFETCH_CRASHPOINT"}
    env["CDRFETCH_DATA_DIR"] = str(data)
    if crashpoint:
        env["CDRFETCH_CRASHPOINT"] = crashpoint
    command = [sys.executable, "-m", "cdrfetch", "youlianyun", "pull", "--sandbox", "--format", "delta",
               "-o", str(out), "-q", *args]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_runs_at_once_over_overlapping_days_store_each_record_once(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    first = cli(out, "--from", "2026-11-18", "--to", "2026-11-26", data=tmp_path / "a")
    second = cli(out, "--from", "2026-11-20", "--to", "2026-11-28", data=tmp_path / "b")  # another machine
    for process in (first, second):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    rows = rows_of(str(out / "calls"))
    assert_once(rows)
    assert projection(rows) == expected("2026-11-18", "2026-11-27")
    account = rows[0]["account"]
    assert DeltaTables(str(out)).resume_point("youlianyun", account) == datetime(2026, 11, 28, tzinfo=SHANGHAI)


@pytest.mark.parametrize("crashpoint", ["chunk-spooled", CRASHPOINT])
def test_sigkill_leaves_readable_tables_and_the_rerun_completes_them(tmp_path: Path, crashpoint: str) -> None:
    out = tmp_path / "lake"
    window = ("--from", "2026-11-27", "--to", "2026-11-30")
    killed = cli(out, *window, data=tmp_path / "data", crashpoint=crashpoint)
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert rows_of(str(out / "calls")) == []  # readable, and nothing of the killed chunk in it
    assert DeltaTable(str(out / "calls")).transaction_version(f"cdrfetch/youlianyun/{ACCOUNT}") is None
    rerun = cli(out, *window, data=tmp_path / "data")
    _, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    rows = rows_of(str(out / "calls"))
    assert_once(rows)
    assert projection(rows) == expected("2026-11-27", "2026-11-29") and rows


def test_a_repeated_chunk_is_filtered_before_the_merge_by_the_ids_of_its_own_partitions(tmp_path: Path) -> None:
    from cdrfetch.destinations.delta.load import Staged

    day, other = date(2024, 3, 1), date(2024, 3, 5)
    load = DeltaTables(str(tmp_path / "lake")).open({"calls": CALLS}, Where("youlianyun", "acct", "x", DAY_ONE))
    load.store(day_chunk(day, day), {"calls": [calls(["r1", "r2"], day)]})
    load.store(day_chunk(other, day), {"calls": [calls(["r9"], other)]})
    staged = Staged(CALLS, [calls(["r1", "r3"], day)])
    known = staged.known_ids(DeltaTable(str(tmp_path / "lake" / "calls")))
    assert sorted(known.to_pylist()) == ["r1", "r2"]  # not r9: that partition is not read
    assert staged.fresh(known).to_pylist() == [False, True]
    staged.close()
