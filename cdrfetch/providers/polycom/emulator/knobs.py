"""Defaults of every Polycom emulator knob (spec §8.5); each is a plain attribute of the emulator."""

from __future__ import annotations

from typing import Any


class Knobs:
    """The fault and shape knobs, settable from tests or as constructor keywords; all off by default."""

    never_ready: bool = False
    phase_seconds: float = 0.1  # per export phase: short, so a sandbox pull shows the phases without waiting on them
    busy_mode: str = "status"  # "status" | "409" | "503"
    foreign_export_seconds: float = 0.0
    stale_complete: bool = False
    error_status: str | None = None
    warn_status: str | None = None
    excluded_clusters: tuple[str, ...] = ()
    counts_mismatch: bool = False
    truncate_zip: str | None = None  # "short" | "lying"
    truncate_times: int = 1
    corrupt_zip: bool = False
    corrupt_times: int = 1
    no_location: bool = False
    location_host: str | None = None
    xml_only: bool = False
    header: bool = True
    itp_rows: int = 0
    member_names: str = "plain"  # "plain" | "opaque"
    unknown_type_rows: int = 0
    etag_format: str = "quoted"  # "quoted" | "bare-millis"
    legacy_only: bool = False
    reject_auth: bool = False
    legacy_delay: float = 1.0
    download_not_ready_status: int = 404
    calls_per_hour: int = 4
    malformed: bool = False


def shared_fault(knobs: Knobs, name: str, value: Any) -> None:
    """The shared data faults in Polycom terms: an export without calls, a broken row, a short zip."""
    if name == "malformed":
        knobs.malformed = value
    elif name == "empty":
        knobs.calls_per_hour = 0 if value else Knobs.calls_per_hour
    elif name == "truncate_downloads":
        knobs.truncate_zip, knobs.truncate_times = ("lying", value) if value else (None, 0)
