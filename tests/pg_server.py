"""A real PostgreSQL server for the PostgreSQL destination tests: `initdb` + `pg_ctl`, one cluster per test worker.

Loaded as a plugin by conftest.py. The cluster listens on a free loopback port and asks every TCP client
for a password (scram-sha-256), like a production server; the server binaries refuse to run as root, so
under root (CI) they run as the `postgres` user in a directory that user owns. `pg` gives a test its own
fresh database and points libpq's PGPASSWORD at the superuser's password, the way a user's environment
would (PGPASSFILE at nothing, so no ~/.pgpass of the machine leaks in).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "cdrfetch_admin"


@dataclass(frozen=True)
class Cluster:
    """A running PostgreSQL server on 127.0.0.1."""

    port: int
    password: str
    directory: Path

    def url(self, database: str = "postgres", user: str = SUPERUSER, query: str = "") -> str:
        """A libpq URL, never with the password (that comes from PGPASSWORD or the destination's secret)."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def connect(self, database: str = "postgres", **options: Any) -> Any:
        import psycopg

        return psycopg.connect(self.url(database), password=self.password, **options)


@dataclass(frozen=True)
class Database:
    """One test's own database in the worker's cluster."""

    cluster: Cluster
    name: str

    def url(self, user: str = SUPERUSER, query: str = "") -> str:
        return self.cluster.url(self.name, user, query)

    def connect(self) -> Any:
        return self.cluster.connect(self.name, autocommit=True)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement, read over a connection of its own (what another client sees)."""
        with self.connect() as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description is not None else []

    def create_role(self, name: str, password: str) -> None:
        """A login role with a password and no privilege beyond connecting."""
        with self.connect() as conn:
            conn.execute(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")


def binary(name: str) -> str:
    """A server program: on PATH, else from Debian's newest /usr/lib/postgresql/<version>/bin (not on PATH there)."""
    found = shutil.which(name)
    if found is None:
        versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
        found = str(versions[-1]) if versions else None
    if found is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server (Debian: apt-get install postgresql)")
    return found


def _as_server_user(command: list[str]) -> list[str]:
    """The command as the `postgres` user when we are root (the server refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(_as_server_user(command), cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr or done.stdout}")


def start_cluster() -> Cluster:
    """initdb + pg_ctl start in a fresh temp directory (owned by the server's user)."""
    directory = Path(tempfile.mkdtemp(prefix="cdrfetch-pg-"))
    password = secrets.token_urlsafe(18)
    (directory / "pwfile").write_text(password + "\n", encoding="utf-8")
    (directory / "sockets").mkdir()
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres", "postgres")
    _run(
        [binary("initdb"), "-D", str(directory / "data"), "-U", SUPERUSER, "--pwfile", str(directory / "pwfile"),
         "-E", "UTF8", "--locale", "C", "--auth-local", "trust", "--auth-host", "scram-sha-256", "--no-sync"],
        directory,
    )  # fmt: skip
    port = _free_port()
    settings = f"-p {port} -k {directory / 'sockets'} -c listen_addresses=127.0.0.1 -c fsync=off"
    settings += " -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
    _run([binary("pg_ctl"), "-D", str(directory / "data"), "-l", str(directory / "log"), "-w", "-o", settings,
          "start"], directory)  # fmt: skip
    return Cluster(port, password, directory)


def stop_cluster(cluster: Cluster) -> None:
    try:
        _run([binary("pg_ctl"), "-D", str(cluster.directory / "data"), "-m", "immediate", "stop"], cluster.directory)
    finally:
        shutil.rmtree(cluster.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The worker's PostgreSQL server, started on first use."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


@pytest.fixture
def pg(pg_cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Database]:
    """A fresh database for this test; PGPASSWORD holds the superuser's password."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with pg_cluster.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("PGPASSWORD", pg_cluster.password)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    for variable in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGSSLMODE", "PGOPTIONS"):
        monkeypatch.delenv(variable, raising=False)
    yield Database(pg_cluster, name)
    with pg_cluster.connect(autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
