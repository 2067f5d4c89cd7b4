"""The test harness: the real CLI in-process, a direct pull over loopback, a clock tests fast-forward.

`pull(server, window)` runs a provider exactly as the pipeline does (chunks, then fetch of each) against
a running emulator with the real core services, no mocks. Pass a `FakeTime` to share one clock
between the client and the emulator: every wait (polls, retries, export phases) then passes at once.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
from cdrfetch.client import Client
from cdrfetch.config import Resolved, Value, keyring_user
from cdrfetch.errors import CdrfetchError
from cdrfetch.progress import Progress
from cdrfetch.providers.base import Provider
from cdrfetch.records import Batch
from cdrfetch.sandbox.server import ExpectedCall, SandboxServer
from cdrfetch.summary import RunSummary
from cdrfetch.values import check_consistent, convert
from cdrfetch.windows import Window

# Waits shortened for direct pulls on the real clock (each applies where the provider has the setting).
QUICK = {"backoff": 0.01, "poll_interval": 0.02, "flow_backoff": 0.01, "busy_retry_interval": 0.05}


def run_cli(*args: str, input: str | None = None) -> Result:
    """Invoke the real CLI in-process; stdout and stderr are captured separately."""
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def read_rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Rows of an output file, read back with an independent reader for each format."""
    if fmt == "parquet":
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
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

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
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


class FakeTime:
    """Wall clock, monotonic clock and sleep that move together, and only when something sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime.now(timezone.utc).replace(microsecond=0)
        self.elapsed = 0.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The wall clock (aware, UTC): the start plus everything slept so far."""
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """Seconds slept so far."""
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        """Jump forward instead of waiting."""
        self.slept.append(seconds)
        self.elapsed += max(0.0, seconds)


Update = tuple[float | None, float | None, str]  # (completed, total, status) of one progress update


class Recorder(Progress):
    """A progress display that remembers every update it was given."""

    def __init__(self, updates: list[Update]) -> None:
        self.updates = updates

    def update(self, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        self.updates.append((completed, total, status))


def projection(rows: list[dict[str, Any]]) -> collections.Counter[ExpectedCall]:
    """Pulled rows as the emulator's oracle (`expected_calls`) sees them."""
    return collections.Counter(ExpectedCall(r["caller"], r["callee"], r["start_time"], r["duration_s"]) for r in rows)


def resolved(cls: type[Provider], settings: dict[str, Any]) -> Resolved:
    """The provider's defaults overlaid with `settings`, converted and checked as the config resolver does."""
    known = {s.name: s for s in cls.all_settings()}
    entries = {s.name: Value(s.default, "default", s.secret) for s in known.values()}
    for name, value in settings.items():
        converted = value if value is None else convert(known[name], value, "test")
        entries[name] = Value(converted, "test", known[name].secret)
    result = Resolved(cls.name, "default", None, entries)
    check_consistent(result)
    return result


@dataclass
class Pulled:
    """What one direct pull produced."""

    provider: Provider
    tables: dict[str, pa.Table]
    errors: list[CdrfetchError] = field(default_factory=list)
    progress: list[Update] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        """The status texts of every progress update."""
        return [status for _, _, status in self.progress]

    @property
    def summary(self) -> RunSummary:
        return self.provider.client.summary

    @property
    def table(self) -> pa.Table:
        """The calls table."""
        return self.tables["calls"]

    def rows(self, table: str = "calls") -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.tables[table].to_pylist()
        return rows

    def projection(self) -> collections.Counter[ExpectedCall]:
        return projection(self.rows())


@contextmanager
def connected(
    server: SandboxServer,
    *,
    time: FakeTime | None = None,
    clock: Callable[[], datetime] | None = None,
    progress: list[Update] | None = None,
    **overrides: Any,
) -> Iterator[Provider]:
    """A provider pointed at a running emulator: its profile, quick waits, then `overrides`.

    With `time`, the client sleeps and reads both clocks through it (share it with the emulator);
    `clock` alone replaces only the wall clock (signatures, dates) and waits stay real.
    """
    cls = providers.load(server.emulator.name)
    names = {s.name for s in cls.all_settings()}
    quick = {k: v for k, v in QUICK.items() if k in names} if time is None else {}
    config = resolved(cls, {**server.emulator.profile(server.url), **quick, **overrides})
    summary = RunSummary(cls.name, cls.account_of(config), "default", "", "")
    clocks: dict[str, Any] = {"clock": time.now, "monotonic": time.monotonic, "sleep": time.sleep} if time else {}
    if clock is not None:
        clocks["clock"] = clock
    recorded = progress if progress is not None else []
    with Client(
        config, log=logging.getLogger(f"cdrfetch.{cls.name}"), summary=summary,
        progress=lambda what, total: Recorder(recorded), **clocks,
    ) as client:  # fmt: skip
        yield cls(config, client)


def pull(
    server: SandboxServer,
    window: Window,
    *,
    keep_going: bool = False,
    chunks: list[Window] | None = None,
    time: FakeTime | None = None,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> Pulled:
    """Fetch every chunk of `window` (or the given `chunks`); errors raise unless `keep_going`."""
    progress: list[Update] = []
    with connected(server, time=time, clock=clock, progress=progress, **overrides) as provider:
        pulled = pull_with(provider, window, chunks=chunks, keep_going=keep_going)
    pulled.progress = progress
    return pulled


def pull_with(
    provider: Provider, window: Window, *, chunks: list[Window] | None = None, keep_going: bool = False
) -> Pulled:
    """What the pipeline does with a provider: chunks, then fetch of each, batches checked against the schema."""
    errors: list[CdrfetchError] = []
    batches: list[Batch] = []
    schemas = provider.output_tables()
    for chunk in chunks if chunks is not None else provider.chunks(window):
        try:
            for batch in provider.fetch(chunk):
                assert batch.data.schema.equals(schemas[batch.table]), f"{batch.table} batch off its schema"
                batches.append(batch)
        except CdrfetchError as error:
            if not keep_going:
                raise
            errors.append(error)
    tables = {
        name: pa.Table.from_batches([b.data for b in batches if b.table == name], schema=schema)
        for name, schema in schemas.items()
    }
    return Pulled(provider, tables, errors)
