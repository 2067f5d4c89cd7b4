"""The shared normalization kit, held to the row-wise definitions it must match."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
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


ANY_TEXT = st.none() | st.text(
    alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from("é汉\u2028\u00a0\u3000\u0085"), max_size=5
)


def _layouts(cells: list[str | None], cut: int, lead: int) -> list[pa.Array | pa.ChunkedArray]:
    """The same cells as one array, as two chunks split at `cut`, and as a slice of a longer array."""
    whole = pa.array(cells, pa.string())
    chunked = pa.chunked_array([whole.slice(0, cut), pa.array(cells[cut:], pa.string())], pa.string())
    sliced = pa.array(["pad"] * lead + cells, pa.string()).slice(lead)
    return [whole, chunked, sliced]


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(ANY_TEXT, min_size=1, max_size=8), data=st.data())
def test_null_where_is_if_else(cells: list[str | None], data: st.DataObject) -> None:
    mask = data.draw(st.lists(st.none() | st.booleans(), min_size=len(cells), max_size=len(cells)))
    cut, lead = data.draw(st.integers(0, len(cells))), data.draw(st.integers(0, 3))
    for values in _layouts(cells, cut, lead):
        flags = pa.array(mask, pa.bool_())
        if isinstance(values, pa.ChunkedArray):
            flags = pa.chunked_array([flags.slice(0, cut), flags.slice(cut)])
        got = tabular.null_where(values, flags)
        expected = pc.if_else(flags, pa.scalar(None, pa.string()), values)
        assert got.to_pylist() == expected.to_pylist()
        assert got.equals(expected)
        assert tabular.blank_to_null(values).to_pylist() == [None if c == "" else c for c in cells]
        # blank skips the whitespace test when no byte can start a space: the full test gives the same
        assert tabular.blank(values).equals(pc.or_(pc.equal(values, ""), pc.utf8_is_space(values)))


@settings(max_examples=300, deadline=None)
@given(
    columns=st.lists(st.lists(ANY_TEXT, min_size=4, max_size=4), min_size=1, max_size=4),
    names=st.lists(st.text(min_size=1, max_size=4), min_size=4, max_size=4, unique=True),
    cut=st.integers(0, 4),
    lead=st.integers(0, 3),
)
def test_json_objects_escapes_every_layout_like_extra_json(
    columns: list[list[str | None]], names: list[str], cut: int, lead: int
) -> None:
    named = list(zip(names[: len(columns)], columns, strict=True))

    def expected(keep: dict[str, list[bool]]) -> list[str]:
        return [extra_json({n: c[row] for n, c in named if c[row] is not None and keep[n][row]}) for row in range(4)]

    everything = {n: [True] * 4 for n, _ in named}
    for layout in range(3):
        members = [(name, _layouts(cells, cut, lead)[layout]) for name, cells in named]
        assert tabular.json_objects(members, 4).to_pylist() == expected(everything)
        # cells made null in place keep their bytes under the null: the text must not change
        spaces = {name: pc.utf8_is_space(cells) for name, cells in members}
        blanked = [(name, tabular.null_where(cells, spaces[name])) for name, cells in members]
        kept = {name: [flag is not True for flag in spaces[name].to_pylist()] for name, _ in members}
        assert tabular.json_objects(blanked, 4).to_pylist() == expected(kept)


def test_prefetched_keeps_order_and_surfaces_an_error_after_what_came_before() -> None:
    items = iter([1, 2, 3])
    assert list(tabular.prefetched(lambda: next(items, None))) == [1, 2, 3]
    calls: list[int] = []

    def failing() -> int | None:
        calls.append(len(calls))
        if len(calls) == 3:
            raise ValueError("third")
        return len(calls)

    got: list[int] = []
    try:
        for item in tabular.prefetched(failing):
            got.append(item)
    except ValueError:
        pass
    assert got == [1, 2] and len(calls) == 3  # nothing runs after the failing call


def test_prefetched_stops_when_the_caller_does() -> None:
    calls: list[int] = []

    def step() -> int:
        calls.append(1)
        return len(calls)

    stream = tabular.prefetched(step)
    assert next(stream) == 1
    stream.close()
    assert len(calls) <= 2  # at most the one computed ahead
