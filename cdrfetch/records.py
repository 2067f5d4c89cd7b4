"""The normalized schemas (Arrow) and helpers to build record batches.

The column order of `calls` is a public contract: columns are only ever added at the end.
Side tables (Huawei `recordings`, Polycom `conferences`) share the keys of `calls` that identify a
row in time and add their own columns after them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from cdrfetch.errors import DataError
from cdrfetch.untrusted import extra_json as extra_json  # part of the record helpers providers use

UTC_MS = pa.timestamp("ms", tz="UTC")
COST = pa.decimal128(18, 6)
DIRECTIONS = ("inbound", "outbound", "internal", "unknown")
BATCH_ROWS = 65_536  # rows per record batch: large enough for columnar speed, small enough for flat memory
# The instants a normalized time may hold: those of Python's datetime (years 1-9999, UTC), so every
# consumer (the sinks, the ledger, a reader's to_pylist) can hold them; Arrow alone would take more.
FIRST_INSTANT = datetime(1, 1, 1, tzinfo=timezone.utc)
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=timezone.utc)
MAX_SECONDS = int((LAST_INSTANT - FIRST_INSTANT).total_seconds())  # no call lasts longer than all of time

CALLS = pa.schema(
    [
        pa.field("provider", pa.string(), nullable=False),
        pa.field("account", pa.string(), nullable=False),
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("start_time", UTC_MS, nullable=False),
        pa.field("end_time", UTC_MS),
        pa.field("duration_s", pa.int64()),
        pa.field("billed_duration_s", pa.int64()),
        pa.field("caller", pa.string()),
        pa.field("callee", pa.string()),
        pa.field("direction", pa.string(), nullable=False),
        pa.field("call_type", pa.string()),
        pa.field("status", pa.string()),
        pa.field("cost", COST),
        pa.field("currency", pa.string()),
        pa.field("country", pa.string()),
        pa.field("recording_url", pa.string()),
        pa.field("extra", pa.string(), nullable=False),
    ]
)

_SIDE_KEYS = ("provider", "account", "record_id", "start_time", "end_time")


def side_table(*columns: pa.Field) -> pa.Schema:
    """Schema of a side table: the shared keys, the table's own columns, then `extra`."""
    shared = [CALLS.field(name) for name in _SIDE_KEYS]
    return pa.schema([*shared, *columns, CALLS.field("extra")])


@dataclass(frozen=True)
class Batch:
    """A record batch destined for one output table."""

    table: str
    data: pa.RecordBatch


def record_id(*parts: object) -> str:
    """Deterministic row id: SHA-1 hex of the parts joined with '|' (None -> empty string)."""
    joined = "|".join("" if part is None else str(part) for part in parts)
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def table_batches(table: str, data: pa.Table) -> Iterator[Batch]:
    """An Arrow table's rows as batches of at most BATCH_ROWS rows."""
    for batch in data.to_batches(max_chunksize=BATCH_ROWS):
        yield Batch(table, batch)


def batches(table: str, schema: pa.Schema, rows: Iterable[Mapping[str, Any]]) -> Iterator[Batch]:
    """Group row dicts into record batches of at most BATCH_ROWS rows (streamed)."""
    pending: list[Mapping[str, Any]] = []
    for row in rows:
        pending.append(row)
        if len(pending) >= BATCH_ROWS:
            yield Batch(table, _record_batch(table, schema, pending))
            pending = []
    if pending:
        yield Batch(table, _record_batch(table, schema, pending))


def _record_batch(table: str, schema: pa.Schema, rows: list[Mapping[str, Any]]) -> pa.RecordBatch:
    """Rows as a batch; a value the schema cannot hold is the provider's bad data, not a crash."""
    try:
        return pa.RecordBatch.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError, TypeError) as exc:
        raise DataError(f"{table}: a value does not fit the schema ({exc})"[:300], "report the record") from None
