"""Test bench for Laaffic: the emulator on loopback, a real Client, and the provider between them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cdrfetch.client import Client
from cdrfetch.config import resolve
from cdrfetch.providers.laaffic.emulator import LaafficEmulator
from cdrfetch.providers.laaffic.provider import Laaffic
from cdrfetch.sandbox.server import ExpectedCall, SandboxServer
from cdrfetch.summary import RunSummary
from cdrfetch.windows import Window, zone

UTC = timezone.utc
SHANGHAI = zone("Asia/Shanghai")
NOW = datetime(2024, 3, 25, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai; records exist up to 2024-03-24


def fixed(instant: datetime = NOW) -> Callable[[], datetime]:
    """A clock stopped at `instant`."""
    return lambda: instant


class Ticking:
    """A clock that moves one second forward each time it is read (thread-safe)."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=1)
            return self.now


def local(year: int, month: int, day: int, hour: int = 0) -> datetime:
    """A Shanghai wall-clock time."""
    return datetime(year, month, day, hour, tzinfo=SHANGHAI)


def days(first: tuple[int, int, int], last: tuple[int, int, int]) -> Window:
    """`[first 00:00, last 00:00)` in Shanghai, as the CLI would build it."""
    return Window(local(*first).astimezone(UTC), local(*last).astimezone(UTC), SHANGHAI)


class ListHandler(logging.Handler):
    """Keeps every log line, rendered, unredacted (to prove none carries a secret)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Lab:
    """One emulator on loopback plus providers pointed at it."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = tmp_path / "config.yaml"
        self.config.write_text("profiles: {}\n", encoding="utf-8")
        self.servers: list[SandboxServer] = []
        self.clients: list[Client] = []
        self.logs = ListHandler()
        self.log = logging.getLogger("cdrfetch")
        self.log.setLevel(logging.DEBUG)
        self.log.addHandler(self.logs)
        self.emulator = LaafficEmulator(clock=fixed())

    def start(self, **knobs: Any) -> LaafficEmulator:
        """Start an emulator (clock fixed at NOW unless given) with `knobs`."""
        knobs.setdefault("clock", fixed())
        self.emulator = LaafficEmulator(**knobs)
        self.servers.append(SandboxServer(self.emulator).start())
        return self.emulator

    @property
    def url(self) -> str:
        return self.servers[-1].url

    def provider(self, clock: Callable[[], datetime] | None = None, **settings: Any) -> Laaffic:
        """A provider with the sandbox profile, tiny backoff, and `settings` on top."""
        injected = {**self.emulator.profile(self.url), "backoff": 0.005, "retries": 3, "timeout": 5.0, **settings}
        resolved = resolve("laaffic", Laaffic.all_settings(), config=str(self.config), injected=injected,
                           keyring_lookup=False)  # fmt: skip
        summary = RunSummary("laaffic", str(resolved["api_key"]), "default", "", "")
        client = Client(resolved, log=logging.getLogger("cdrfetch.laaffic"), summary=summary, clock=clock or fixed())
        self.clients.append(client)
        return Laaffic(resolved, client)

    def pull(self, provider: Laaffic, window: Window) -> list[dict[str, Any]]:
        """What the pipeline does: chunks, fetch each, rows of every batch."""
        rows: list[dict[str, Any]] = []
        for chunk in provider.chunks(window):
            for batch in provider.fetch(chunk):
                assert batch.table == "calls"
                rows.extend(batch.data.to_pylist())
        return rows

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies the emulator received, in arrival order."""
        return [request.json() for request in self.emulator.received]

    def close(self) -> None:
        self.log.removeHandler(self.logs)
        for client in self.clients:
            client.__exit__(None, None, None)
        for server in self.servers:
            server.stop()


def as_expected(rows: list[dict[str, Any]]) -> list[ExpectedCall]:
    """Rows in the oracle's shape, sorted like it."""
    calls = [ExpectedCall(r["caller"], r["callee"], r["start_time"], r["duration_s"]) for r in rows]
    return sorted(calls, key=lambda c: (c.start_time, c.caller or "", c.callee or ""))


def oracle(emulator: LaafficEmulator, window: Window) -> list[ExpectedCall]:
    """The emulator's independent answer, sorted like `as_expected`."""
    return sorted(emulator.expected_calls(window), key=lambda c: (c.start_time, c.caller or "", c.callee or ""))
