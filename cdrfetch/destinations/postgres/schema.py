"""The tables in PostgreSQL: Arrow types as column types, creation, the compatibility check and evolution.

DDL runs under one advisory lock per database, so two runs creating the same tables at once never
trip over each other (CREATE TABLE IF NOT EXISTS alone is not race-safe: both may pass the check).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from cdrfetch.destinations.base import evolution
from cdrfetch.errors import ConfigError

STATE = "cdrfetch_state"
CHUNKS = "cdrfetch_chunks"
DDL_LOCK = "cdrfetch-ddl"  # the advisory lock's key (hashed by the server)
JSON_COLUMNS = ("extra",)  # JSON objects in text: jsonb, so `extra->>'field'` can be queried
Connection = psycopg.Connection[tuple[Any, ...]]
Columns = list[tuple[str, str]]

STATE_TABLES = {
    STATE: """(provider text NOT NULL, account text NOT NULL, complete_until timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (provider, account))""",
    CHUNKS: """(provider text NOT NULL, account text NOT NULL, chunk_start timestamptz NOT NULL,
        chunk_end timestamptz NOT NULL, unit_id text, stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, account, chunk_start))""",
}


def column_type(field: pa.Field) -> str:
    """The PostgreSQL type of an Arrow field, spelt as format_type() spells it."""
    kind = field.type
    if field.name in JSON_COLUMNS and pa.types.is_string(kind):
        return "jsonb"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_timestamp(kind):
        return "timestamp with time zone" if kind.tz else "timestamp without time zone"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision},{kind.scale})"
    names = {pa.int64(): "bigint", pa.int32(): "integer", pa.int16(): "smallint", pa.bool_(): "boolean",
             pa.float64(): "double precision"}  # fmt: skip
    if kind in names:
        return names[kind]
    raise TypeError(f"no PostgreSQL type for Arrow {kind} (column {field.name})")


def wanted(schema: pa.Schema) -> Columns:
    """(name, type) of each column, `not null` part of the type: what an existing table must match."""
    return [(f.name, column_type(f) + ("" if f.nullable else " not null")) for f in schema]


def existing(conn: Connection, schema: str, table: str) -> Columns | None:
    """(name, type) of an existing table's columns in order; None when there is no such table."""
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null'
           ELSE '' END FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
        (schema, table),
    ).fetchall()
    if rows:
        return [(str(name), str(kind)) for name, kind in rows]
    found = conn.execute("SELECT to_regclass(%s)", (str(qualified(schema, table).as_string(conn)),)).fetchone()
    return None if found is None or found[0] is None else []


def qualified(schema: str, table: str) -> sql.Identifier:
    return sql.Identifier(schema, table)


def ensure(conn: Connection, schema: str, tables: Mapping[str, pa.Schema]) -> None:
    """Create the schema, the data tables and the state tables as needed; evolve older data tables.

    Commits on success. An incompatible existing table is refused before anything is changed.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))
        if not schema_exists(conn, schema):
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table, arrow in tables.items():
            _ensure_table(conn, schema, table, arrow)
        for table, definition in STATE_TABLES.items():
            if existing(conn, schema, table) is None:  # CREATE ... IF NOT EXISTS would need CREATE even then
                create = sql.SQL("CREATE TABLE {} " + definition)  # a constant of this module
                conn.execute(create.format(qualified(schema, table)))


def schema_exists(conn: Connection, schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def _ensure_table(conn: Connection, schema: str, table: str, arrow: pa.Schema) -> None:
    have = existing(conn, schema, table)
    if have is None:
        columns = sql.SQL(", ").join(_column(field) for field in arrow)
        key = sql.SQL(", PRIMARY KEY (record_id)") if "record_id" in arrow.names else sql.SQL("")
        conn.execute(sql.SQL("CREATE TABLE {} ({}{})").format(qualified(schema, table), columns, key))
        return
    if "record_id" in arrow.names and not keyed_on_record_id(conn, schema, table):
        raise ConfigError(
            f"existing table {table!r} has no primary key or unique index on record_id",
            "add one (ALTER TABLE ... ADD PRIMARY KEY (record_id)): records are merged on it",
        )
    for position in missing(table, have, arrow):
        add = sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(qualified(schema, table), _column(arrow.field(position)))
        try:
            with conn.transaction():
                conn.execute(add)
        except psycopg.errors.NotNullViolation:
            raise ConfigError(
                f"cannot add the NOT NULL column {arrow.field(position).name} to the non-empty table {table!r}",
                "migrate the table: add the column with a value for the existing rows",
            ) from None


def keyed_on_record_id(conn: Connection, schema: str, table: str) -> bool:
    """Whether a unique index on record_id alone exists (what ON CONFLICT (record_id) needs)."""
    found = conn.execute(
        """SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
           AND a.attname = 'record_id'""",
        (qualified(schema, table).as_string(conn),),
    ).fetchone()
    return found is not None


def missing(table: str, have: Columns, arrow: pa.Schema) -> list[int]:
    """Positions of the trailing columns an older table lacks (refuses an incompatible table)."""
    return evolution(table, have, wanted(arrow))


def _column(field: pa.Field) -> sql.Composed:
    constraint = sql.SQL("" if field.nullable else " NOT NULL")
    return sql.SQL("{} {}{}").format(sql.Identifier(field.name), sql.SQL(column_type(field)), constraint)
