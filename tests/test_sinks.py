from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cdrfetch.errors import UsageError
from cdrfetch.records import CALLS, extra_json
from cdrfetch.sinks import format_for, open_sink
from cdrfetch.testing.harness import read_rows

UTC = timezone.utc


def call(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "provider": "demo", "account": "acct", "record_id": "r1", "call_id": "c1",
        "start_time": datetime(2024, 1, 1, 1, 0, 0, tzinfo=UTC),
        "end_time": datetime(2024, 1, 1, 1, 0, 35, 250000, tzinfo=UTC),
        "duration_s": 35, "billed_duration_s": None, "caller": "+8613800138000", "callee": "010,\"quoted\"",
        "direction": "outbound", "call_type": "0", "status": None, "cost": Decimal("0.052500"),
        "currency": "CNY", "country": None, "recording_url": None, "extra": extra_json({"appId": "x", "中文": "值"}),
    }  # fmt: skip
    row.update(overrides)
    return row


BATCH = pa.RecordBatch.from_pylist([call(), call(record_id="r2", cost=None, duration_s=None)], schema=CALLS)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "json"])
def test_round_trip_through_an_independent_reader(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / "out" / f"calls.{fmt}"
    sink = open_sink(fmt, CALLS, target)
    sink.write(BATCH)
    assert not target.exists(), "nothing under the final name before commit"
    assert sink.commit() == target
    rows = read_rows(target, fmt)
    assert [r["record_id"] for r in rows] == ["r1", "r2"]
    first, second = rows
    if fmt == "parquet":
        assert first == call()
        assert second["cost"] is None
        return
    assert first["start_time"] == "2024-01-01T01:00:00Z"
    assert first["end_time"] == "2024-01-01T01:00:35.250Z"
    assert first["cost"] == "0.052500"
    assert first["callee"] == '010,"quoted"'
    if fmt == "csv":
        assert (second["cost"], second["duration_s"], json.loads(first["extra"])["中文"]) == ("", "", "值")
    else:
        assert (second["cost"], second["duration_s"], first["duration_s"]) == (None, None, 35)
        assert first["extra"] == {"appId": "x", "中文": "值"}


def test_abort_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "calls.parquet"
    target.write_text("previous good file")
    sink = open_sink("parquet", CALLS, target)
    sink.write(BATCH)
    sink.abort()
    assert target.read_text() == "previous good file"
    assert [p.name for p in tmp_path.iterdir()] == ["calls.parquet"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_empty_outputs_are_valid(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"calls.{fmt}"
    open_sink(fmt, CALLS, target).commit()
    assert read_rows(target, fmt) == []


def test_format_selection() -> None:
    assert format_for("x.jsonl", None) == "jsonl"
    assert format_for("x.data", "csv") == "csv"  # an unknown suffix with an explicit format
    assert format_for("out/", None) == format_for("out", None) == "parquet"  # directories
    assert format_for("-", None) == "csv"
    assert format_for("x.csv", "CSV") == "csv"
    with pytest.raises(UsageError, match=r"does not write \.xlsx files"):
        format_for("calls.xlsx", None)  # would be Parquet under an Excel name
    with pytest.raises(UsageError, match=r"names a \.csv file but --format is json"):
        format_for("x.csv", "json")
    with pytest.raises(UsageError):
        format_for("x", "xlsx")
    with pytest.raises(UsageError):
        open_sink("parquet", CALLS, None)


def test_an_existing_directory_with_a_dot_in_its_name_is_a_directory(tmp_path: Path) -> None:
    directory = tmp_path / "out.v2"
    directory.mkdir()
    assert format_for(str(directory), None) == "parquet"  # not refused as a ".v2 file"


def test_timestamps_render_as_iso_utc_with_milliseconds_only_when_set() -> None:
    from datetime import datetime, timezone

    from cdrfetch.sinks import as_text_columns

    utc = timezone.utc
    stamps = [datetime(1, 1, 1, tzinfo=utc), datetime(999, 12, 31, 23, 59, 59, 5000, tzinfo=utc), None]
    stamps += [datetime(2024, 3, 9, 8, 7, 6, 120000, tzinfo=utc), datetime(9999, 12, 31, 23, 59, 59, tzinfo=utc)]
    batch = pa.RecordBatch.from_pydict({"at": pa.array(stamps, pa.timestamp("ms", tz="UTC"))})
    assert as_text_columns(batch).column("at").to_pylist() == [
        "0001-01-01T00:00:00Z", "0999-12-31T23:59:59.005Z", None, "2024-03-09T08:07:06.120Z", "9999-12-31T23:59:59Z",
    ]  # fmt: skip
