"""Helpers shared by the tests."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from typer.testing import CliRunner, Result

from cdrfetch.cli import app


def run_cli(*args: str, input: str | None = None) -> Result:
    """Invoke the real CLI in-process; stdout and stderr are captured separately."""
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Rows of an output file, read back with an independent reader for each format."""
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return list(json.loads(text))


def read_table(path: Path) -> pa.Table:
    """A Parquet output as an Arrow table."""
    return pq.read_table(path)


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps secrets in a dict (keyring's API, no OS store)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)
