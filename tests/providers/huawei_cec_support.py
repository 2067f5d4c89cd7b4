"""Helpers for the Huawei CEC tests: run the provider against its emulator over loopback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from cdrfetch.client import Client, Progress, utc_now
from cdrfetch.errors import CdrfetchError
from cdrfetch.providers.huawei_cec.emulator import HuaweiCecEmulator
from cdrfetch.providers.huawei_cec.provider import HuaweiCec
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.summary import RunSummary
from cdrfetch.windows import Window

UTC = timezone.utc
WINDOW = Window(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC))
FAST = {"backoff": 0.01, "poll_interval": 0.02, "flow_backoff": 0.01, "poll_timeout": 10.0}


class Recorder(Progress):
    """A progress display that remembers every status it was given."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses

    def update(self, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        self.statuses.append(status)


@dataclass
class Pulled:
    """What one direct pull produced."""

    tables: dict[str, pa.Table]
    summary: RunSummary
    errors: list[CdrfetchError] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def rows(self, table: str = "calls") -> list[dict[str, Any]]:
        return self.tables[table].to_pylist()


def settings_for(emulator: HuaweiCecEmulator, url: str, **overrides: Any) -> dict[str, Any]:
    """Every setting: defaults, the emulator's profile, fast waits, then the overrides."""
    defaults = {s.name: s.default for s in HuaweiCec.all_settings()}
    return defaults | emulator.profile(url) | FAST | overrides


@contextmanager
def provider_for(
    emulator: HuaweiCecEmulator,
    summary_box: list[RunSummary],
    statuses: list[str],
    clock: Callable[[], datetime] = utc_now,
    **overrides: Any,
) -> Iterator[HuaweiCec]:
    """Client + provider pointed at a running emulator (the real services, no mocks)."""
    with SandboxServer(emulator) as server:
        settings = settings_for(emulator, server.url, **overrides)
        summary = RunSummary("huawei-cec", str(settings["ak"]), "test", "", "")
        summary_box.append(summary)
        log = logging.getLogger("cdrfetch.test.huawei")
        with Client(
            settings, log=log, summary=summary, clock=clock, progress=lambda w, t: Recorder(statuses)
        ) as client:
            yield HuaweiCec(settings, client)


def pull(
    emulator: HuaweiCecEmulator,
    window: Window = WINDOW,
    *,
    clock: Callable[[], datetime] = utc_now,
    keep_going: bool = False,
    **overrides: Any,
) -> Pulled:
    """Fetch every chunk of `window` from the emulator (errors raise unless keep_going)."""
    summaries: list[RunSummary] = []
    statuses: list[str] = []
    errors: list[CdrfetchError] = []
    batches = []
    with provider_for(emulator, summaries, statuses, clock, **overrides) as provider:
        for chunk in provider.chunks(window):
            try:
                batches.extend(provider.fetch(chunk))
            except CdrfetchError as error:
                if not keep_going:
                    raise
                errors.append(error)
    tables = {
        name: pa.Table.from_batches([b.data for b in batches if b.table == name], schema=schema)
        for name, schema in HuaweiCec.output_tables().items()
    }
    return Pulled(tables, summaries[0], errors, statuses)


def count(emulator: HuaweiCecEmulator, route: str) -> int:
    """How many requests reached `route`."""
    return sum(route in request.path for request in emulator.received)
