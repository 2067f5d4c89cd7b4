"""Helpers shared by the tests."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from typer.testing import CliRunner, Result

from cdrfetch import providers
from cdrfetch.cli import app
from cdrfetch.config import keyring_user


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


def write_profile(provider: str, settings: dict[str, Any], path: Path, keyring_backend: MemoryKeyring) -> Path:
    """A chmod-600 config file with the non-secret `settings`; the secrets go to the keyring."""
    secret_names = {s.name for s in providers.load(provider).all_settings() if s.secret}
    for name in secret_names & set(settings):
        keyring_backend.set_password("cdrfetch", keyring_user("default", provider, name), str(settings[name]))
    plain = {k: v for k, v in settings.items() if k not in secret_names}
    path.write_text(yaml.safe_dump({"profiles": {"default": {provider: plain}}}), encoding="utf-8")
    path.chmod(0o600)
    return path
