"""The knobs of the Laaffic emulator (spec §8.5-8.6): record volumes, checks, faults and record formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cdrfetch.providers.laaffic.emulator import data as synth


@dataclass
class Knobs:
    """Laaffic-specific behaviour (spec §8.5-8.6); every fault is off by default."""

    records_min: int = 0
    records_max: int = 60
    heavy_dates: tuple[date, ...] = ()  # these days get `heavy_count` records
    heavy_count: int = 250
    skew_seconds: int = 1800
    max_span_days: int = 31
    retention_days: int = 62
    qps: int | None = None  # -15 beyond this many answered requests per second
    ip_allow: tuple[str, ...] | None = None
    ip_block: tuple[str, ...] = ()
    key_disabled: bool = False
    workspace_disabled: bool = False
    no_permission: bool = False
    search_count: bool = False
    insert_during_paging: int = 0  # records added once page `insert_after_page` was served
    insert_after_page: int = 1
    insert_repeat: int = 1  # how many times the insertion happens (on later queries too)
    end_inclusive: bool = False  # filter `startTime <= endTime` (an inclusive reading of the docs)
    total_offset: int = 0  # report a `total` this much larger than the records served
    declare: dict[str, Any] = field(default_factory=dict)  # `data` members answered as given (`pages`, `total`)
    serve_size: int | None = None  # records served per page, whatever `size` asked for
    malformed: int | None = None  # position in each query whose `startTime` is unreadable
    slow_seconds: float = 0.0  # delay before answering a successful page ...
    slow_pages: tuple[int, ...] = ()  # ... of these page numbers (empty: every page)
    formats: synth.Formats = field(default_factory=synth.Formats)
