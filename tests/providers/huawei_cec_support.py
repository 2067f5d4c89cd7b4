"""Huawei CEC test helpers: the shared direct-pull harness (cdrfetch.testing) with the emulator started here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from cdrfetch.providers.huawei_cec.emulator import HuaweiCecEmulator
from cdrfetch.providers.huawei_cec.provider import HuaweiCec
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing import harness
from cdrfetch.testing.harness import Pulled
from cdrfetch.windows import Window

UTC = timezone.utc
WINDOW = Window(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC))
POLL_TIMEOUT = 10.0


@contextmanager
def provider_for(emulator: HuaweiCecEmulator, **overrides: Any) -> Iterator[HuaweiCec]:
    """A provider pointed at `emulator`, running for the duration of the block."""
    with SandboxServer(emulator) as server, harness.connected(server, **overrides) as provider:
        assert isinstance(provider, HuaweiCec)
        yield provider


def pull(
    emulator: HuaweiCecEmulator,
    window: Window = WINDOW,
    *,
    clock: Callable[[], datetime] | None = None,
    keep_going: bool = False,
    **overrides: Any,
) -> Pulled:
    """Fetch every chunk of `window` from the emulator (errors raise unless keep_going)."""
    overrides.setdefault("poll_timeout", POLL_TIMEOUT)
    with SandboxServer(emulator) as server:
        return harness.pull(server, window, clock=clock, keep_going=keep_going, **overrides)


def count(emulator: HuaweiCecEmulator, route: str) -> int:
    """How many requests reached `route`."""
    return sum(route in request.path for request in emulator.received)
