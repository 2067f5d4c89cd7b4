"""Youlianyun test helpers: a fixed clock and bill files, on the shared direct-pull harness (cdrfetch.testing)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdrfetch.providers.youlianyun.emulator import APP_ID, SID, YoulianyunEmulator, files
from cdrfetch.providers.youlianyun.parse import DayParser
from cdrfetch.providers.youlianyun.provider import Youlianyun
from cdrfetch.records import CALLS
from cdrfetch.sandbox.server import ExpectedCall, Request, SandboxServer
from cdrfetch.testing import harness
from cdrfetch.testing.harness import Pulled
from cdrfetch.windows import Window, day_window, zone

VECTOR_NOW = datetime(2015, 10, 13, 8, 7, 56, tzinfo=timezone.utc)  # ts 20151013160756 (§3.2)
SHANGHAI = zone("Asia/Shanghai")


def fixed(now: datetime = VECTOR_NOW) -> Callable[[], datetime]:
    """A clock stuck at `now`."""
    return lambda: now


def ticking(start: datetime = VECTOR_NOW, step: timedelta = timedelta(seconds=1)) -> Callable[[], datetime]:
    """A clock that moves `step` forward on every reading."""
    state = [start - step]

    def now() -> datetime:
        state[0] += step
        return state[0]

    return now


@contextmanager
def provider_for(server: SandboxServer, clock: Callable[[], datetime], **overrides: Any) -> Iterator[Youlianyun]:
    """A provider pointed at `server`, with the emulator's profile plus `overrides`."""
    with harness.connected(server, clock=clock, **overrides) as provider:
        assert isinstance(provider, Youlianyun)
        yield provider


def pull(
    server: SandboxServer, window: Window, clock: Callable[[], datetime] | None = None, **overrides: Any
) -> Pulled:
    """Run chunks() + fetch() of every chunk and collect the batches (clock: fixed at VECTOR_NOW)."""
    return harness.pull(server, window, clock=clock or fixed(), **overrides)


def day(text: str) -> Window:
    """The Shanghai day `text` as an explicit window."""
    return day_window(date.fromisoformat(text), SHANGHAI)


def expected(emulator: YoulianyunEmulator, window: Window) -> collections.Counter[ExpectedCall]:
    """The oracle, in the shape of Pulled.projection()."""
    return collections.Counter(emulator.expected_calls(window))


def requests_to(emulator: YoulianyunEmulator, route: str) -> list[Request]:
    """Requests the emulator received on paths containing `route`."""
    return [r for r in emulator.received if route in r.path]


def parse_file(path: Path, keep: Window | None = None, tz: str = "Asia/Shanghai") -> pa.Table:
    """Parse one bill file with the provider's parser (sandbox credentials)."""
    parser = DayParser(SID, APP_ID, zone(tz), keep)
    return pa.Table.from_batches(list(parser.parse(path, "bill.txt")), schema=CALLS)


def write_bill(tmp: Path, rows: list[files.BillRow], **layout: Any) -> Path:
    """A bill file rendered by the emulator's writer with `layout` knobs."""
    path = tmp / "bill.bin"
    fmt = files.FileFormat(**layout)
    text = "".join(files.lines(rows, fmt)).encode(fmt.encoding)
    path.write_bytes(text)
    return path
