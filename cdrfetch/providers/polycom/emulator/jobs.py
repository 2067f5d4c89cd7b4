"""One export on the emulated DMA: its build phases, its timing and the status documents it shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from cdrfetch.providers.polycom.emulator.render import dma_time, unix

PHASES = (
    "RETRIEVING_CDR_NUM_CALL_RECORDS",
    "RETRIEVING_CDR_NUM_CONF_RECORDS",
    "RETRIEVING_CDR_CALL_UUIDS",
    "RETRIEVING_CDR_CALL_RECORDS",
    "RETRIEVING_CDR_CONF_RECORDS",
    "CREATING_CDR_FILE",
)


@dataclass
class Export:
    """One export on the DMA: ours (`own`) or another client's."""

    start: datetime
    end: datetime
    created: datetime
    own: bool = True
    seconds: float = 0.0  # total build time
    zip_bytes: bytes | None = field(default=None, repr=False)
    records: int = 0


def age(export: Export, now: datetime) -> float:
    """Seconds since the export was started."""
    return (now - export.created).total_seconds()


def done_at(export: Export) -> datetime:
    """When the export's build finishes (its creationTime and ETag once complete)."""
    return export.created + timedelta(seconds=export.seconds)


def stale_export(now: datetime) -> Export:
    """A finished export of a month ago, as a DMA still shows it before a new one replaces it."""
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    return Export(start, start + timedelta(days=1), now - timedelta(days=29), own=False)


def echo(start: datetime, end: datetime, tz: tzinfo) -> dict[str, object]:
    """The window of an export as the status document repeats it."""
    return {"fromDate": dma_time(start, tz), "toDate": dma_time(end, tz)}


def running_fields(export: Export, now: datetime, total: int, tz: tzinfo, *, stuck: bool) -> dict[str, object]:
    """Status of an export still building: the phase its age reaches (`stuck`: held at the call records)."""
    phase = min(int(age(export, now) / (export.seconds / len(PHASES))), len(PHASES) - 1)
    if stuck:
        phase = PHASES.index("RETRIEVING_CDR_CALL_RECORDS")
    remaining = max(0, round(export.seconds - age(export, now)))
    return {
        "totalNumberCdrRecords": total,
        "numberCdrRecordsProcessed": total * phase // len(PHASES),
        "estimatedTimeRemainingSeconds": remaining,
        "actionType": PHASES[phase],
        "statusType": "RUNNING",
        "downloadReady": False,
        **echo(export.start, export.end, tz),
    }


def done_fields(export: Export, total: int, status_type: str, download_url: str, tz: tzinfo) -> dict[str, object]:
    """Status of a finished export, ready for download at `download_url`."""
    return {
        "totalNumberCdrRecords": total,
        "numberCdrRecordsProcessed": total,
        "estimatedTimeRemainingSeconds": 0,
        "actionType": "CREATING_CDR_FILE",
        "statusType": status_type,
        "downloadReady": True,
        "downloadUrl": download_url,
        "entityTag": str(unix(done_at(export))),
        **echo(export.start, export.end, tz),
        "creationTime": dma_time(done_at(export), tz),
    }
