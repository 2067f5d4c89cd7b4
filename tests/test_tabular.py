"""The shared normalization kit, held to the row-wise definitions it must match."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch import tabular
from cdrfetch.records import UTC_MS, extra_json

CELL = st.none() | st.text(max_size=6) | st.sampled_from(['a"b', "back\\slash", "tab\there", "line\nend", "汉字"])


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(st.text(min_size=1, max_size=5), min_size=0, max_size=4, unique=True),
    rows=st.integers(1, 6),
    data=st.data(),
)
def test_json_objects_is_extra_json_row_by_row(names: list[str], rows: int, data: st.DataObject) -> None:
    columns = [data.draw(st.lists(CELL, min_size=rows, max_size=rows)) for _ in names]
    members = [(name, pa.array(cells, pa.string())) for name, cells in zip(names, columns, strict=True)]
    got = tabular.json_objects(members, rows)
    got = got.to_pylist() if hasattr(got, "to_pylist") else got
    expected = [
        extra_json({name: cells[row] for name, cells in zip(names, columns, strict=True) if cells[row] is not None})
        for row in range(rows)
    ]
    assert list(got) == expected


def test_rebatch_cuts_exact_batches_and_keeps_every_row() -> None:
    batches = [pa.record_batch({"n": list(range(start, start + size))}) for start, size in ((0, 7), (7, 1), (8, 9))]
    out = list(tabular.rebatch(batches, rows=5))
    assert [b.num_rows for b in out] == [5, 5, 5, 2]
    assert [n for b in out for n in b.column("n").to_pylist()] == list(range(17))


def test_local_to_utc_takes_the_first_of_a_repeated_hour_and_moves_gap_times_forward() -> None:
    zone = ZoneInfo("America/New_York")
    naive = pa.array([datetime(2024, 11, 3, 1, 30), datetime(2024, 3, 10, 2, 30), None], pa.timestamp("ms"))
    got = tabular.local_to_utc(naive, zone).to_pylist()
    assert got[0] == datetime(2024, 11, 3, 5, 30, tzinfo=timezone.utc)  # EDT, the first 01:30
    assert got[1] == datetime(2024, 3, 10, 2, 30).replace(tzinfo=zone, fold=0).astimezone(timezone.utc)
    assert got[2] is None
    assert tabular.local_to_utc(naive, timezone(timedelta(hours=8))).type == UTC_MS


def test_blank_to_null_and_blank() -> None:
    cells = pa.array(["", " ", "x", None])
    assert tabular.blank_to_null(cells).to_pylist() == [None, " ", "x", None]
    assert tabular.blank(cells).to_pylist() == [True, True, False, None]
