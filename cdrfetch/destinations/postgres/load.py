"""One pull's writes into PostgreSQL: each complete chunk in one transaction, rows and state together.

A chunk's batches are streamed with COPY (CSV rendered by Arrow, never row by row in Python) into
temporary staging tables, then merged into the tables on record_id; the chunk is recorded and the
account's watermark advanced in the same transaction, under a lock per (provider, account) so two
runs of one account merge one after the other (and never deadlock on each other's rows).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from cdrfetch import crashpoints
from cdrfetch.destinations import state
from cdrfetch.destinations.base import Chunk, Load
from cdrfetch.destinations.postgres.connection import translated
from cdrfetch.destinations.postgres.schema import CHUNKS, STATE, Connection, qualified

log = logging.getLogger("cdrfetch.pipeline")
# Arrow quotes every string and leaves a null as an empty unquoted field; PostgreSQL's CSV COPY reads
# exactly that as NULL, and a quoted "" as an empty string, so the two never mix.
CSV_OPTIONS = pacsv.WriteOptions(include_header=False)


class PostgresLoad(Load):
    """One pull's connection; `store` commits each chunk on its own."""

    def __init__(
        self, conn: Connection, schema: str, tables: Mapping[str, pa.Schema], *, upsert: bool, where: str
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.tables = dict(tables)
        self.upsert = upsert
        self.where = where

    def store(self, chunk: Chunk, tables: Mapping[str, Iterable[pa.RecordBatch]]) -> dict[str, int]:
        with translated(self.where):
            try:
                stored = self._store(chunk, tables)
                crashpoints.reach("postgres-before-commit")
                self.conn.commit()
            except BaseException:
                self._rollback()
                raise
        return stored

    def _store(self, chunk: Chunk, tables: Mapping[str, Iterable[pa.RecordBatch]]) -> dict[str, int]:
        staged = {table: self._stage(table, batches) for table, batches in tables.items() if table in self.tables}
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self._lock_key(chunk),))
        stored = {table: self._merge(table) if rows else 0 for table, rows in staged.items()}
        self._record(chunk)
        return stored

    def _lock_key(self, chunk: Chunk) -> str:
        return json.dumps(["cdrfetch-state", self.schema, chunk.provider, chunk.account])

    def _stage(self, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        """COPY the batches into a staging table dropped at commit; returns the rows staged."""
        stage = sql.Identifier(f"cdrfetch_stage_{table}")
        target = qualified(self.schema, table)
        self.conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(stage, target)
        )  # fmt: skip
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, self._columns(table))
        with self.conn.cursor() as cursor:
            with cursor.copy(copy_sql) as copy:
                for batch in batches:
                    copy.write(memoryview(render_csv(batch)))
            return max(cursor.rowcount, 0)

    def _columns(self, table: str, prefix: str | None = None) -> sql.Composed:
        names = self.tables[table].names
        if prefix is None:
            return sql.SQL(", ").join(sql.Identifier(name) for name in names)
        return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)

    def _merge(self, table: str) -> int:
        """Insert the staged rows whose record_id is new (upsert: update the changed ones); returns rows inserted."""
        stage, target = sql.Identifier(f"cdrfetch_stage_{table}"), qualified(self.schema, table)
        columns = self._columns(table)
        if not self.upsert:
            merge = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (record_id) DO NOTHING")
            with self.conn.cursor() as cursor:
                cursor.execute(merge.format(target, columns, columns, stage))
                return max(cursor.rowcount, 0)
        inserted, updated = self._upsert(table, stage, target)
        if updated:
            log.info("%s: updated %d changed %s records", self.where, updated, table)
        return inserted

    def _upsert(self, table: str, stage: sql.Identifier, target: sql.Identifier) -> tuple[int, int]:
        columns = self._columns(table)
        changing = [name for name in self.tables[table].names if name != "record_id"]
        assignments = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in changing)
        old = sql.SQL(", ").join(sql.Identifier("t", n) for n in changing)
        new = sql.SQL(", ").join(sql.Identifier("excluded", n) for n in changing)
        # xmax is 0 on a row this statement inserted, and set on one it updated
        merge = sql.SQL(
            "WITH merged AS (INSERT INTO {target} AS t ({columns}) SELECT DISTINCT ON (record_id) {columns} "
            "FROM {stage} ORDER BY record_id ON CONFLICT (record_id) DO UPDATE SET {assignments} "
            "WHERE ({old}) IS DISTINCT FROM ({new}) RETURNING (t.xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
        ).format(target=target, columns=columns, stage=stage, assignments=assignments, old=old, new=new)
        row = self.conn.execute(merge).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _record(self, chunk: Chunk) -> None:
        """Remember the chunk as stored, and move the account's watermark as far as it now reaches."""
        if chunk.end > chunk.start:
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} AS c (provider, account, chunk_start, chunk_end, unit_id) "
                    "VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (provider, account, chunk_start) DO UPDATE SET chunk_end = "
                    "GREATEST(c.chunk_end, EXCLUDED.chunk_end), unit_id = EXCLUDED.unit_id, stored_at = now()"
                ).format(qualified(self.schema, CHUNKS)),
                (chunk.provider, chunk.account, chunk.start, chunk.end, chunk.unit_id),
            )
        before = watermark(self.conn, self.schema, chunk.provider, chunk.account)
        after = state.advance(before, chunk, lambda t: self._end_of_chunk_at(chunk, t))
        if after is not None and after != before:
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (provider, account, complete_until) VALUES (%s, %s, %s) ON CONFLICT "
                    "(provider, account) DO UPDATE SET complete_until = EXCLUDED.complete_until, updated_at = now()"
                ).format(qualified(self.schema, STATE)),
                (chunk.provider, chunk.account, after),
            )

    def _end_of_chunk_at(self, chunk: Chunk, moment: datetime) -> datetime | None:
        """The furthest end of a stored chunk that covers `moment` (it proves the account complete up to there)."""
        row = self.conn.execute(
            sql.SQL(
                "SELECT max(chunk_end) FROM {} WHERE provider = %s AND account = %s AND chunk_start <= %s "
                "AND chunk_end > %s"
            ).format(qualified(self.schema, CHUNKS)),
            (chunk.provider, chunk.account, moment, moment),
        ).fetchone()
        return utc(row[0]) if row and row[0] is not None else None

    def _rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # the connection is gone: the server has dropped the transaction already
            log.debug("rollback failed", exc_info=True)

    def abort(self) -> None:
        """Close the connection (an uncommitted chunk is rolled back by the server)."""
        if not self.conn.closed:
            self._rollback()
            self.conn.close()


def render_csv(batch: pa.RecordBatch) -> pa.Buffer:
    """A batch as PostgreSQL CSV: ISO-8601 timestamps with zone, decimals as text, null as an empty field."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, CSV_OPTIONS)
    return sink.getvalue()


def watermark(conn: Connection, schema: str, provider: str, account: str) -> datetime | None:
    """The account's complete_until, or None (no row)."""
    row = conn.execute(
        sql.SQL("SELECT complete_until FROM {} WHERE provider = %s AND account = %s").format(qualified(schema, STATE)),
        (provider, account),
    ).fetchone()
    return utc(row[0]) if row else None


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
