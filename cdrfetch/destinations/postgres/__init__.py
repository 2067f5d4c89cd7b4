"""PostgreSQL tables: `-o postgresql://user@host:port/db?sslmode=...` (`pip install 'cdrfetch[postgres]'`).

Each provider table (`calls`, `recordings`, `conferences`) is a table of the same name in the
destination's schema (default `public`), created on first use with real column types and
PRIMARY KEY (record_id). Beside them, `cdrfetch_state` holds each account's watermark and
`cdrfetch_chunks` every stored chunk, both written in the same transaction as the chunk's rows, so
`--since-last` resumes from the database on any machine. Every libpq URL parameter applies; the
password comes from the named destination's secret, else from libpq's own PGPASSWORD / .pgpass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit

import pyarrow as pa

from cdrfetch.destinations.base import Destination, Load, Where
from cdrfetch.destinations.named import Named
from cdrfetch.destinations.postgres import schema as tables_in
from cdrfetch.destinations.postgres.connection import GRANT_HINT, connect, translated
from cdrfetch.destinations.postgres.load import PostgresLoad, watermark
from cdrfetch.errors import AuthError

DEFAULT_SCHEMA = "public"


class Postgres(Destination):
    """Tables in one PostgreSQL database and schema."""

    keeps_state: ClassVar[bool] = True

    def __init__(self, spec: Named) -> None:
        self.spec = spec
        self.url = spec.url
        self.schema = spec.schema or DEFAULT_SCHEMA
        self.upsert = spec.upsert

    @classmethod
    def from_named(cls, spec: Named) -> Postgres:
        """The destination `spec` configures (nothing is connected yet)."""
        return cls(spec)

    def describe(self) -> str:
        """The URL without its query (where libpq's secret parameters would be) and the schema."""
        parts = urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{parts.path} (schema {self.schema})"

    def _password(self) -> str | None:
        """The named destination's password; None leaves it to libpq (PGPASSWORD, PGPASSFILE, ~/.pgpass)."""
        return self.spec.password() if self.spec.name else None

    def _connect(self) -> tables_in.Connection:
        return connect(self.url, self._password(), self.describe())

    def open(self, tables: Mapping[str, pa.Schema], where: Where) -> Load:
        conn = self._connect()
        try:
            with translated(self.describe()):
                tables_in.ensure(conn, self.schema, tables)
        except BaseException:
            conn.close()
            raise
        return PostgresLoad(conn, self.schema, tables, upsert=self.upsert, where=self.describe())

    def resume_point(self, provider: str, account: str) -> datetime | None:
        """The account's watermark in the state table (None before the first stored chunk)."""
        with self._connect() as conn, translated(self.describe()):
            if tables_in.existing(conn, self.schema, tables_in.STATE) is None:
                return None
            return watermark(conn, self.schema, provider, account)

    def check(self, tables: Mapping[str, pa.Schema]) -> str:
        """Reachable, allowed to create or write the tables, and every existing table compatible; changes nothing."""
        with self._connect() as conn, translated(self.describe()):
            notes = [self._check_table(conn, table, arrow) for table, arrow in tables.items()]
            if tables_in.existing(conn, self.schema, tables_in.STATE) is None:
                self._require_create(conn)
        return f"{self.describe()}: " + ", ".join(notes)

    def _check_table(self, conn: tables_in.Connection, table: str, arrow: pa.Schema) -> str:
        have = tables_in.existing(conn, self.schema, table)
        if have is None:
            self._require_create(conn)
            return f"{table} (to be created)"
        added = tables_in.missing(table, have, arrow)
        name = tables_in.qualified(self.schema, table).as_string(conn)
        self._require(conn, "has_table_privilege(%s, 'INSERT, SELECT')", name, f"write to {table}")
        if added:  # ALTER TABLE needs the table's owner (or a member of its role)
            owner = "pg_has_role((SELECT relowner FROM pg_class WHERE oid = to_regclass(%s)), 'USAGE')"
            self._require(conn, owner, name, f"add columns to {table}")
        return f"{table} (ok{f', {len(added)} column(s) to add' if added else ''})"

    def _require_create(self, conn: tables_in.Connection) -> None:
        if tables_in.schema_exists(conn, self.schema):
            test, what = "has_schema_privilege(%s, 'CREATE')", f"create tables in schema {self.schema}"
            self._require(conn, test, self.schema, what)
        else:
            test, what = "has_database_privilege(%s, 'CREATE')", f"create the schema {self.schema}"
            self._require(conn, test, str(conn.info.dbname), what)

    def _require(self, conn: tables_in.Connection, test: str, argument: str, what: str) -> None:
        row = conn.execute("SELECT " + test, (argument,)).fetchone()
        if not row or not row[0]:
            raise AuthError(f"{self.describe()}: the user may not {what}", GRANT_HINT)
