"""The machine-readable run summary: what was asked, what was written, what went wrong."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


def utc_stamp() -> str:
    """Now, as ISO-8601 UTC to the second: the form of `started_at` and `finished_at`."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class ChunkResult:
    """Outcome of one unit of work."""

    label: str
    start: str
    end: str
    status: str = "pending"  # ok | failed | skipped
    records: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None


@dataclass
class RunSummary:
    """Everything a scheduler or a human needs to know about one run."""

    provider: str
    account: str
    profile: str
    window_start: str
    window_end: str
    started: float = field(default_factory=time.monotonic)
    chunks: list[ChunkResult] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    files: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    warnings: list[str] = field(default_factory=list)
    partial_reasons: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    duration_s: float = 0.0
    started_at: str = field(default_factory=utc_stamp)
    finished_at: str = ""
    error: str | None = None  # the message and hint of the error the run ended with
    hint: str | None = None

    def warn(self, message: str) -> None:
        """Record a warning (the caller also logs it)."""
        self.warnings.append(message)

    def partial(self, reason: str) -> None:
        """Mark the run as a partial result (exit 3) for `reason`."""
        self.partial_reasons.append(reason)

    def count(self, table: str, rows: int) -> None:
        """Add written rows to the per-table totals."""
        self.records[table] = self.records.get(table, 0) + rows

    def fail(self, message: str, hint: str | None) -> None:
        """Keep the error the run ends with (masked when the summary leaves the process)."""
        self.error, self.hint = message, hint

    def finish(self, exit_code: int) -> None:
        """Freeze the exit code, the elapsed time and the time of the end."""
        self.exit_code = exit_code
        self.duration_s = round(time.monotonic() - self.started, 3)
        self.finished_at = utc_stamp()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, secrets masked: the one form in which a summary leaves the process
        (summary file, JSON log, ledger). The monotonic start time is internal."""
        from cdrfetch.redact import REDACTOR

        data = asdict(self)
        del data["started"]
        scrubbed: dict[str, Any] = REDACTOR.scrub(data)
        return scrubbed
