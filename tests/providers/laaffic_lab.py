"""Test bench for Laaffic: the emulator on loopback, a real Client, and the provider between them."""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cdrfetch.providers.laaffic.emulator import LaafficEmulator
from cdrfetch.providers.laaffic.provider import Laaffic
from cdrfetch.sandbox.server import ExpectedCall, SandboxServer
from cdrfetch.testing import harness
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
        self.servers: list[SandboxServer] = []
        self.providers = contextlib.ExitStack()
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
        overrides = {"backoff": 0.005, "retries": 3, "timeout": 5.0, **settings}
        connected = harness.connected(self.servers[-1], clock=clock or fixed(), **overrides)
        provider = self.providers.enter_context(connected)
        assert isinstance(provider, Laaffic)
        return provider

    def pull(self, provider: Laaffic, window: Window) -> list[dict[str, Any]]:
        """What the pipeline does: chunks, fetch each, rows of every batch."""
        return harness.pull_with(provider, window).rows()

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies the emulator received, in arrival order."""
        return [request.json() for request in self.emulator.received]

    def close(self) -> None:
        self.log.removeHandler(self.logs)
        self.providers.close()
        for server in self.servers:
            server.stop()


def as_expected(rows: list[dict[str, Any]]) -> collections.Counter[ExpectedCall]:
    """Rows in the oracle's shape."""
    return harness.projection(rows)


def oracle(emulator: LaafficEmulator, window: Window) -> collections.Counter[ExpectedCall]:
    """The emulator's independent answer."""
    return collections.Counter(emulator.expected_calls(window))
