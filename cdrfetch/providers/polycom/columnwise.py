"""Column-wise normalization of regular Polycom CALL rows with Arrow (a million rows in seconds).

Regular means: CALL rows with one column count, offsets on every time, no ITP lists, no inverted
times and no control characters. `checked` raises Irregular for anything else, and the caller
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
from cdrfetch.tabular import Irregular, blank, json_objects

TIME = r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"
_MAPPED = {name.lower() for name in CALL_MAPPED}
_NULL = pa.scalar(None, pa.string())


def checked(table: pa.Table, names: list[str], chunk_end: datetime) -> int:
    """Rows starting at/after `chunk_end`; Irregular unless every row suits the column-wise path."""
    kinds = pc.utf8_upper(pc.utf8_trim_whitespace(table.column(1)))
    if table.num_rows == 0 or not pc.all(pc.equal(kinds, "CALL")).as_py():
        raise Irregular
    column = _columns(table, names)
    uuid, start_text, end_text = column("callUuid"), column("startTime"), column("endTime")
    _require(pc.all(pc.invert(pc.match_substring(uuid, ","))))
    _require(pc.all(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(uuid)), 0)))
    _require(pc.all(pc.match_substring_regex(start_text, TIME)))
    _require(pc.all(pc.or_(pc.equal(end_text, ""), pc.match_substring_regex(end_text, TIME))))
    start, _, millis = _times(column)
    _require(pc.invert(pc.any(pc.less(millis, 0), min_count=0)))  # min_count 0: no end time at all is fine
    return int(pc.sum(pc.invert(_inside(start, chunk_end))).as_py() or 0)


def normalized(table: pa.Table, names: list[str], account: str, chunk_end: datetime) -> pa.Table:
    """The normalized calls of checked rows that start inside the window."""
    column = _columns(table, names)
    start, end, millis = _times(column)
    arrays = _arrays(table, names, column, column("callUuid"), start, end, millis, account)
    return pa.Table.from_arrays(arrays, schema=CALLS).filter(_inside(start, chunk_end))


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
    return pc.if_else(blank(values), _NULL, values)


def _arrays(
    table: pa.Table, names: list[str], column: Any, uuid: Any, start: Any, end: Any, millis: Any, account: str
) -> list[Any]:
    rows = table.num_rows
    wall = pc.cast(pc.cast(start, pa.timestamp("ms")), pa.string())  # "YYYY-MM-DD HH:MM:SS.fff", UTC
    stamp = pc.replace_substring(pc.replace_substring_regex(wall, r"\.000$", ""), " ", "T")
    dialin = pc.utf8_upper(pc.utf8_trim_whitespace(column("dialin")))
    has_callee = "destendpoint" in {n.lower() for n in names}
    nothing = pa.nulls(rows, pa.string())
    return [
        pa.array(["polycom"] * rows, pa.string()),
        pa.array([account] * rows, pa.string()),
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
