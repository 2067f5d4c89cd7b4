"""The CC-FS `_call` / `_record` column layouts and their mapping to the normalized schema (spec §5-§6).

Everything here works on whole Arrow columns of raw cell text ("" = empty cell); a per-row check
mirrors each mandatory rule so an error can be traced back to its line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

import pyarrow as pa
import pyarrow.compute as pc

from cdrfetch import records
from cdrfetch.tabular import blank_to_null, json_objects, local_to_utc, utc_or_none

PROVIDER = "huawei-cec"
NAIVE_MS = pa.timestamp("ms")
_STR = pa.string()
_DIRECTION_CODES = ("0", "6", "7", "40", "41", "42", "43", "44", "45")
_DIRECTIONS = pa.array(["inbound", "internal", *["outbound"] * 7])

CALL_NAMES = (
    "developer", "account_id", "cc_id", "agent_id", "call_id", "caller_no", "callee_no",
    "wait_begin", "wait_end", "ack_begin", "ack_end", "call_begin", "call_end", "device_type", "device_no",
    "call_type", "release_cause", "call_id_num", "vdn_id", "pre_device_type", "pre_device_no",
)  # fmt: skip
RECORD_NAMES = (
    "developer", "account_id", "cc_id", "agent_id", "call_id", "caller_no", "callee_no", "call_begin",
    "call_end", "file_name", "task_status", "task_result", "original_file_name", "vdn_id", "call_type",
    "media_type", "user_wanted_skill_id", "current_skill_id",
)  # fmt: skip
CALL_EXTRA = (
    "account_id", "cc_id", "agent_id", "wait_begin", "wait_end", "ack_begin", "ack_end", "device_type",
    "device_no", "call_id_num", "vdn_id", "pre_device_type", "pre_device_no",
)  # fmt: skip
RECORD_EXTRA = (
    "account_id", "cc_id", "task_status", "task_result", "vdn_id", "user_wanted_skill_id", "current_skill_id",
)  # fmt: skip

RECORDINGS = records.side_table(
    pa.field("call_id", _STR, nullable=False),
    pa.field("agent_id", _STR),
    pa.field("caller", _STR),
    pa.field("callee", _STR),
    pa.field("file_name", _STR, nullable=False),
    pa.field("original_file_name", _STR),
    pa.field("call_type", _STR),
    pa.field("media_type", _STR),
)


class BadRow(Exception):
    """A mandatory value is missing; `check(row, zone)` is True for a raw CSV row failing the same rule."""

    def __init__(self, reason: str, check: Callable[[list[str], tzinfo], bool]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.check = check


def cell(row: Sequence[str], index: int) -> str:
    """The cell at `index` of a raw row, "" when the row is short."""
    return row[index] if index < len(row) else ""


def py_time(text: str) -> datetime | None:
    """One cell as a naive datetime (`YYYY-MM-DD hh:mm:ss`, `T` and fractions accepted), else None."""
    try:
        value = datetime.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None
    return value if value is None or value.tzinfo is None else None


def readable(text: str, zone: tzinfo) -> bool:
    """Whether `times` reads the cell: a time that is an instant of the years 1-9999 once in UTC."""
    value = py_time(text)
    return value is not None and utc_or_none(value, zone) is not None


def times(values: pa.Array, zone: tzinfo) -> pa.Array:
    """Cells in `zone` -> timestamp[ms, UTC]; empty or unreadable cells (and out-of-range times) -> null."""
    cells = blank_to_null(values)
    try:
        naive = pc.cast(cells, NAIVE_MS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        naive = pa.array([None if c is None else py_time(c) for c in cells.to_pylist()], NAIVE_MS)
    return local_to_utc(naive, zone)


def extra_column(fields: Sequence[tuple[str, pa.Array]], rows: int) -> pa.Array:
    """The `extra` JSON object of each row from (name, cells) pairs, empty cells left out."""
    return json_objects([(name, blank_to_null(values)) for name, values in fields], rows)


def direction(call_type: pa.Array) -> pa.Array:
    """§6.3: 0 inbound; 7 and 40-45 outbound; 6 internal; anything else unknown."""
    index = pc.index_in(call_type, value_set=pa.array(_DIRECTION_CODES))
    return pc.fill_null(pc.take(_DIRECTIONS, index), "unknown")


def developer_field(
    cells: pa.Array, account: str, warn: Callable[[str], None], name: str
) -> list[tuple[str, pa.Array]]:
    """`developer` goes to extra only on rows where it is not the AK (and that is worth a warning)."""
    other = pc.and_(pc.not_equal(cells, ""), pc.not_equal(cells, account))
    count = pc.sum(other).as_py() or 0
    if not count:
        return []
    warn(f"{name}: {count} rows name a developer other than the configured AK (kept in extra.developer)")
    return [("developer", pc.if_else(other, cells, pa.scalar("", _STR)))]


def require(ok: pa.Array, reason: str, check: Callable[[list[str], tzinfo], bool]) -> None:
    """Raise BadRow when any row fails a mandatory rule."""
    if not pc.all(ok).as_py():
        raise BadRow(reason, check)


def _no_start(row: list[str], zone: tzinfo) -> bool:
    return not any(readable(cell(row, i), zone) for i in (11, 7, 9))


def normalize_calls(
    c: dict[str, pa.Array], rows: int, account: str, zone: tzinfo, warn: Callable[[str], None], name: str
) -> pa.RecordBatch:
    """§6.1: one block of `_call` cells -> `calls`."""
    call_id = c["call_id"]
    require(pc.not_equal(call_id, ""), "call_id is empty", lambda row, z: not cell(row, 4))
    begin, end = times(c["call_begin"], zone), times(c["call_end"], zone)
    start = begin
    if pc.any(pc.is_null(begin)).as_py():  # unanswered calls: wait_begin, then ack_begin (§6.1)
        start = pc.coalesce(begin, times(pc.coalesce(blank_to_null(c["wait_begin"]), c["ack_begin"]), zone))
    require(pc.is_valid(start), "no readable call_begin, wait_begin or ack_begin", _no_start)
    extension = [(key, c[key]) for key in c if key not in CALL_NAMES]
    extra = [(key, c[key]) for key in CALL_EXTRA] + extension + developer_field(c["developer"], account, warn, name)
    columns = [
        pa.repeat(pa.scalar(PROVIDER), rows),
        pa.repeat(pa.scalar(account), rows),
        pc.binary_join_element_wise(call_id, c["call_id_num"], ":"),
        call_id,
        start,
        end,
        _duration(begin, end, warn, name),
        pa.nulls(rows, pa.int64()),
        blank_to_null(c["caller_no"]),
        blank_to_null(c["callee_no"]),
        direction(c["call_type"]),
        blank_to_null(c["call_type"]),
        blank_to_null(c["release_cause"]),
        pa.nulls(rows, records.COST),
        *(pa.nulls(rows, _STR) for _ in range(3)),
        extra_column(extra, rows),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=records.CALLS)


def _duration(begin: pa.Array, end: pa.Array, warn: Callable[[str], None], name: str) -> pa.Array:
    """Whole seconds from call_begin to call_end; null when either is empty or the span is negative."""
    millis = pc.subtract(end.cast(pa.int64()), begin.cast(pa.int64()))
    negative = pc.less(millis, 0)
    count = pc.sum(negative).as_py() or 0
    if count:
        warn(f"{name}: {count} rows end before they begin (duration left empty)")
        millis = pc.if_else(negative, pa.scalar(None, pa.int64()), millis)
    return pc.divide(millis, 1000)


def normalize_recordings(
    c: dict[str, pa.Array], rows: int, account: str, zone: tzinfo, warn: Callable[[str], None], name: str
) -> pa.RecordBatch:
    """§6.2: one block of `_record` cells -> `recordings`."""
    call_id, file_name = c["call_id"], c["file_name"]
    require(pc.not_equal(call_id, ""), "call_id is empty", lambda row, z: not cell(row, 4))
    require(pc.not_equal(file_name, ""), "file_name is empty", lambda row, z: not cell(row, 9))
    start = times(c["call_begin"], zone)
    require(pc.is_valid(start), "call_begin is empty or unreadable", lambda row, z: not readable(cell(row, 7), z))
    extension = [(key, c[key]) for key in c if key not in RECORD_NAMES]
    extra = [(key, c[key]) for key in RECORD_EXTRA] + extension + developer_field(c["developer"], account, warn, name)
    columns = [
        pa.repeat(pa.scalar(PROVIDER), rows),
        pa.repeat(pa.scalar(account), rows),
        pc.binary_join_element_wise(call_id, file_name, ":"),
        start,
        times(c["call_end"], zone),
        call_id,
        *(blank_to_null(c[key]) for key in ("agent_id", "caller_no", "callee_no")),
        file_name,
        *(blank_to_null(c[key]) for key in ("original_file_name", "call_type", "media_type")),
        extra_column(extra, rows),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=RECORDINGS)


Normalizer = Callable[[dict[str, pa.Array], int, str, tzinfo, Callable[[str], None], str], pa.RecordBatch]


@dataclass(frozen=True)
class Table:
    """One member kind: its documented column names and its normalizer."""

    names: tuple[str, ...]
    normalizer: Normalizer

    def extend(self, header: Sequence[str], width: int) -> list[str]:
        """Names for `width` columns: documented ones by position, then header names or `col_N`."""
        names = list(self.names[:width])
        for index in range(len(self.names), width):
            label = header[index].strip() if index < len(header) else ""
            names.append(label if label and label not in names else f"col_{index + 1}")
        return names

    def normalize(
        self, c: dict[str, pa.Array], rows: int, account: str, zone: tzinfo, warn: Callable[[str], None], name: str
    ) -> pa.RecordBatch:
        """Pad missing trailing columns with empty cells, then normalize."""
        empty = pa.repeat(pa.scalar("", _STR), rows)
        full = {key: c.get(key, empty) for key in self.names} | {k: v for k, v in c.items() if k not in self.names}
        return self.normalizer(full, rows, account, zone, warn, name)


CALL = Table(CALL_NAMES, normalize_calls)
RECORD = Table(RECORD_NAMES, normalize_recordings)
