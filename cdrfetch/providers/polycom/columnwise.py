"""Column-wise normalization of regular Polycom CALL rows with Arrow (a million rows in seconds).

Regular means: CALL rows with one column count, offsets on every time, no ITP lists, no inverted
times and no control characters. `regular_calls` raises Irregular for anything else, and the caller
hands such rows to the row-by-row parser (which names the line of a bad row and warns about
oddities); both paths produce the same rows, and a property test holds them to that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cdrfetch.providers.polycom.parse import CALL_MAPPED
from cdrfetch.records import CALLS
from cdrfetch.tabular import Irregular, blank, json_objects, may_hold_space, null_where

TIME = r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"
_MAPPED = {name.lower() for name in CALL_MAPPED}
_NULL = pa.scalar(None, pa.string())
_BOOLEANS = pa.array(["TRUE", "FALSE"])


def regular_calls(table: pa.Table, names: list[str], account: str, chunk_end: datetime) -> tuple[pa.Table, int]:
    """(the normalized calls starting before `chunk_end`, how many start at/after it) of regular rows.

    Irregular unless every row suits the column-wise path.
    """
    column = _columns(table, names)
    start, end, millis = _checked(table, column)
    inside = _inside(start, chunk_end)
    after = table.num_rows - int(pc.sum(inside).as_py() or 0)
    calls = pa.Table.from_arrays(_arrays(table, names, column, start, end, millis, account), schema=CALLS)
    return (calls.filter(inside) if after else calls), after  # a filter keeping every row would copy them all


def _checked(table: pa.Table, column: Any) -> tuple[Any, Any, Any]:
    """The times of `_times`; Irregular unless the rows are regular (see the module docstring)."""
    kinds = table.column(1)
    if table.num_rows == 0:
        raise Irregular
    if not pc.all(pc.equal(kinds, "CALL")).as_py():  # the exact spelling is the usual one
        _require(pc.all(pc.equal(pc.utf8_upper(pc.utf8_trim_whitespace(kinds)), "CALL")))
    uuid, start_text, end_text = column("callUuid"), column("startTime"), column("endTime")
    _require(pc.all(pc.invert(pc.match_substring(uuid, ","))))
    if may_hold_space(uuid):
        _require(pc.all(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(uuid)), 0)))
    else:  # nothing to trim
        _require(pc.all(pc.not_equal(uuid, "")))
    _require(pc.all(pc.match_substring_regex(start_text, TIME)))
    _require(pc.all(pc.or_(pc.equal(end_text, ""), pc.match_substring_regex(end_text, TIME))))
    start, end, millis = _times(column)
    _require(pc.invert(pc.any(pc.less(millis, 0), min_count=0)))  # min_count 0: no end time at all is fine
    return start, end, millis


def _times(column: Any) -> tuple[Any, Any, Any]:
    """(start, end, end - start in ms) in UTC; end is null where the cell is empty."""
    end_text = column("endTime")
    start, end = _utc(column("startTime")), _utc(pc.if_else(pc.equal(end_text, ""), _NULL, end_text))
    return start, end, pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64()))


def _inside(start: Any, chunk_end: datetime) -> Any:
    micros = pa.timestamp("us", tz="UTC")  # the window end may carry microseconds
    return pc.less(pc.cast(start, micros), pa.scalar(chunk_end, micros))


def _columns(table: pa.Table, names: list[str]) -> Any:
    lowered = [n.lower() for n in names]

    def column(name: str) -> pa.ChunkedArray:
        index = lowered.index(name.lower()) if name.lower() in lowered else -1
        return table.column(index) if index >= 0 else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])

    return column


def _require(condition: Any) -> None:
    if not condition.as_py():
        raise Irregular


def _utc(text: Any) -> Any:
    instant = pc.cast(text, pa.timestamp("ns", tz="UTC"))
    return pc.cast(pc.floor_temporal(instant, unit="millisecond"), pa.timestamp("ms", tz="UTC"))


def _optional(values: Any) -> Any:
    return null_where(values, blank(values))


def _arrays(
    table: pa.Table, names: list[str], column: Any, start: Any, end: Any, millis: Any, account: str
) -> list[Any]:
    rows, uuid = table.num_rows, column("callUuid")
    wall = pc.cast(pc.cast(start, pa.timestamp("ms")), pa.string())  # "YYYY-MM-DD HH:MM:SS.fff", UTC
    stamp = pc.replace_substring(pc.replace_substring_regex(wall, r"\.000$", ""), " ", "T")
    dialin = column("dialin")
    if not pc.all(pc.is_in(dialin, _BOOLEANS)).as_py():  # not all spelled exactly TRUE / FALSE
        dialin = pc.utf8_upper(pc.utf8_trim_whitespace(dialin))
    has_callee = "destendpoint" in {n.lower() for n in names}
    nothing = pa.nulls(rows, pa.string())
    return [
        pa.repeat(pa.scalar("polycom"), rows),
        pa.repeat(pa.scalar(account), rows),
        pc.binary_join_element_wise(uuid, ":", stamp, "Z", ""),
        uuid,
        start,
        end,
        pc.divide(millis, 1000),
        pa.nulls(rows, pa.int64()),
        _optional(column("origEndpoint")),
        _optional(column("destEndpoint")) if has_callee else nothing,
        pc.if_else(pc.equal(dialin, "TRUE"), "inbound", "unknown"),
        _optional(column("callType")),
        _optional(column("failureSignalingCode")),
        pa.nulls(rows, CALLS.field("cost").type),
        nothing,
        nothing,
        nothing,
        _extra(table, names),
    ]


def _extra(table: pa.Table, names: list[str]) -> Any:
    """`{"name":"value",...}` of the non-blank unmapped cells, in column order."""
    pairs = zip(names, table.columns, strict=True)
    members = [(name, _optional(cells)) for name, cells in pairs if name.lower() not in _MAPPED]
    return json_objects(members, table.num_rows)
