"""Column-wise parsing of a regular Polycom calls member with Arrow (a million rows in seconds).

Only the common case is handled here: a member of CALL rows with one column count, offsets on
every time, no ITP lists, no inverted times and no control characters. Anything else returns None
and the row-by-row parser (which names the line of a bad row and warns about oddities) takes over,
so both paths produce the same rows; a property test holds them to that.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv

from cdrfetch.providers._polycom_parse import CALL_COLUMNS, CALL_MAPPED
from cdrfetch.records import CALLS

_CONTROL = bytes(c for c in range(32) if c != 10)  # \r is allowed only as part of \r\n
TIME = r"^-?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"
_MAPPED = {name.lower() for name in CALL_MAPPED}


class _Fallback(Exception):
    """This member needs the row-by-row parser."""


def calls_table(text: str, *, account: str, chunk_end: datetime) -> tuple[pa.Table, int, int] | None:
    """(calls inside the window, CALL rows in the file, rows at/after the window end), or None."""
    try:
        table, names = _read(text)
        return _calls(table, names, account, chunk_end)
    except (_Fallback, pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _read(text: str) -> tuple[pa.Table, list[str]]:
    """All cells as strings; the header row (if any) gives the names."""
    if not text or text[0] in "\r\n":
        raise _Fallback
    first = next(csv.reader([text.split("\n", 1)[0]]), [])
    raw = text.encode("utf-8")
    # control characters need JSON escapes and line breaks inside values break the line count check
    if len(first) < 3 or len(raw) - len(raw.translate(None, _CONTROL)) != raw.count(b"\r\n"):
        raise _Fallback
    header = first[0].strip().lower() == "version"
    table = pacsv.read_csv(
        pa.py_buffer(raw),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True, skip_rows=1 if header else 0),
        convert_options=pacsv.ConvertOptions(
            column_types={f"f{i}": pa.string() for i in range(len(first))}, strings_can_be_null=False
        ),
    )
    lines = raw.count(b"\n") + (not raw.endswith(b"\n"))
    if table.num_columns != len(first) or lines != table.num_rows + header:
        raise _Fallback
    names = [c.strip() for c in first] if header else [*CALL_COLUMNS, *(f"col_{i + 1}" for i in range(8, len(first)))]
    return table, names[: len(first)]


def _calls(table: pa.Table, names: list[str], account: str, chunk_end: datetime) -> tuple[pa.Table, int, int]:
    column = _columns(table, names)
    kinds = pc.utf8_upper(pc.utf8_trim_whitespace(table.column(1)))
    if table.num_rows == 0 or not pc.all(pc.equal(kinds, "CALL")).as_py():
        raise _Fallback
    uuid, start_text, end_text = column("callUuid"), column("startTime"), column("endTime")
    _require(pc.all(pc.invert(pc.match_substring(uuid, ","))))
    _require(pc.all(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(uuid)), 0)))
    _require(pc.all(pc.match_substring_regex(start_text, TIME)))
    _require(pc.all(pc.or_(pc.equal(end_text, ""), pc.match_substring_regex(end_text, TIME))))
    start, end = _utc(start_text), _utc(pc.if_else(pc.equal(end_text, ""), pa.scalar(None, pa.string()), end_text))
    millis = pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64()))
    _require(pc.invert(pc.any(pc.less(millis, 0))))
    arrays = _normalized(table, names, column, uuid, start, end, millis, account)
    calls = pa.Table.from_arrays(arrays, schema=CALLS)
    micros = pa.timestamp("us", tz="UTC")  # the window end may carry microseconds
    inside = pc.less(pc.cast(start, micros), pa.scalar(chunk_end, micros))
    kept = calls.filter(inside)
    return kept, table.num_rows, table.num_rows - kept.num_rows


def _columns(table: pa.Table, names: list[str]) -> Any:
    lowered = [n.lower() for n in names]

    def column(name: str) -> pa.ChunkedArray:
        index = lowered.index(name.lower()) if name.lower() in lowered else -1
        return table.column(index) if index >= 0 else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])

    return column


def _require(condition: Any) -> None:
    if not condition.as_py():
        raise _Fallback


def _utc(text: Any) -> Any:
    instant = pc.cast(text, pa.timestamp("ns", tz="UTC"))
    return pc.cast(pc.floor_temporal(instant, unit="millisecond"), pa.timestamp("ms", tz="UTC"))


def _optional(values: Any) -> Any:
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(values), ""), pa.scalar(None, pa.string()), values)


def _normalized(
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
    """`{"name":"value",...}` of the non-empty unmapped cells, in column order."""
    columns = ((n, c) for n, c in zip(names, table.columns, strict=True) if n.lower() not in _MAPPED)
    pieces = [piece for piece in (_piece(name, cells) for name, cells in columns) if piece is not None]
    if not pieces:
        return pa.array(["{}"] * table.num_rows, pa.string())
    body = pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
    return pc.binary_join_element_wise("{", body, "}", "")


def _piece(name: str, cells: Any) -> Any:
    """`"name":"value"` per row, null where the cell is blank; None when the column is all empty."""
    if not pc.max(pc.utf8_length(cells)).as_py():
        return None
    value = cells
    if pc.any(pc.match_substring(cells, "\\")).as_py():
        value = pc.replace_substring(value, "\\", "\\\\")
    if pc.any(pc.match_substring(cells, '"')).as_py():
        value = pc.replace_substring(value, '"', '\\"')
    value = pc.if_else(_blank(cells), pa.scalar(None, pa.string()), value)
    return pc.binary_join_element_wise(json.dumps(name, ensure_ascii=False) + ':"', value, '"', "")


def _blank(cells: Any) -> Any:
    """Cells that are empty or only whitespace (what `str.strip()` empties)."""
    return pc.or_(pc.equal(pc.utf8_length(cells), 0), pc.utf8_is_space(cells))
