"""Connecting to PostgreSQL, and psycopg's errors as cdrfetch's (exit codes, hints, no secret).

libpq reports connection failures as text with no SQLSTATE, so those are told apart by their
wording; everything the server rejects later carries a SQLSTATE and is classed by it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, DataError, UnavailableError
from cdrfetch.redact import REDACTOR

CONNECT_TIMEOUT_S = 10  # a dead host must never hang a cron run
APPLICATION = "cdrfetch"
SECRET_PARAMETERS = ("password", "sslpassword")  # libpq URL parameters that are secrets
NETWORK_HINT = "check the host, the port and that the server accepts TCP connections (pg_hba.conf, firewall)"
AUTH_HINT = "check the user and its password (CDRFETCH_DESTINATION_<NAME>_PASSWORD, the keyring, or PGPASSWORD)"
GRANT_HINT = "grant the user CREATE on the schema and INSERT/UPDATE on the tables, or use another schema"
# Wording of libpq's connection failures (they carry no SQLSTATE)
_AUTH_WORDS = ("password authentication failed", "no password supplied", "authentication failed", "pg_hba.conf")
_ROLE_MISSING = ("role", "does not exist")
_DATABASE_MISSING = ("database", "does not exist")


def connect(url: str, password: str | None, where: str) -> psycopg.Connection[tuple[Any, ...]]:
    """A connection (not autocommit) with a connect timeout unless the URL or PGCONNECT_TIMEOUT sets one."""
    parameters = _parameters(url, where)
    defaults = {"application_name": APPLICATION, "client_encoding": "UTF8"}  # the URL's own values win
    options: dict[str, Any] = {name: value for name, value in defaults.items() if name not in parameters}
    REDACTOR.add(*(str(parameters[name]) for name in SECRET_PARAMETERS if parameters.get(name)))
    REDACTOR.add(password or "", os.environ.get("PGPASSWORD", ""))
    if "connect_timeout" not in parameters and not os.environ.get("PGCONNECT_TIMEOUT"):
        options["connect_timeout"] = CONNECT_TIMEOUT_S
    if password is not None:
        options["password"] = password
    with translated(where):
        return psycopg.connect(url, **options)


def _parameters(url: str, where: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        hint = "see libpq's connection URIs"
        raise ConfigError(f"{where}: invalid PostgreSQL URL: {_first_line(exc)}", hint) from None


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Turn psycopg's errors raised inside into CdrfetchErrors naming `where`."""
    try:
        yield
    except psycopg.Error as exc:
        raise classify(exc, where) from None


def classify(exc: psycopg.Error, where: str) -> CdrfetchError:
    """The cdrfetch error for one psycopg error."""
    message = f"{where}: {_first_line(exc)}"
    state = exc.sqlstate or ""
    if not state:
        return _connection_failure(exc, message)
    if state.startswith("28") or state == "42501":  # invalid authorization / insufficient privilege
        return AuthError(message, GRANT_HINT if state == "42501" else AUTH_HINT)
    if state == "3D000":
        return ConfigError(message, "create the database, or fix its name in the URL")
    if state.startswith(("22", "23")):  # data exception, integrity constraint violation
        return DataError(message, "report the record: PostgreSQL refused a value of it")
    if state.startswith(("08", "53", "57", "40")):  # connection, resources, shutdown, deadlock/serialization
        return UnavailableError(message, "try again later; check the server's log", retryable=True)
    return UnavailableError(message, "see the PostgreSQL server's log")


def _connection_failure(exc: psycopg.Error, message: str) -> CdrfetchError:
    text = str(exc).lower()
    if any(words in text for words in _AUTH_WORDS) or all(word in text for word in _ROLE_MISSING):
        return AuthError(message, AUTH_HINT)
    if all(word in text for word in _DATABASE_MISSING):
        return ConfigError(message, "create the database, or fix its name in the URL")
    if isinstance(exc, psycopg.OperationalError):
        return UnavailableError(message, NETWORK_HINT, retryable=True)
    return UnavailableError(message, "see the PostgreSQL server's log")


def _first_line(exc: BaseException) -> str:
    """The error's first meaningful line, without libpq's 'connection failed:' prefix chain."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return REDACTOR(line.replace("FATAL:  ", "").replace("ERROR:  ", ""))
