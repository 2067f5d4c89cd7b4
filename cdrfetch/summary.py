"""The machine-readable run summary: what was asked, what was written, what went wrong."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


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

    def warn(self, message: str) -> None:
        """Record a warning (the caller also logs it)."""
        self.warnings.append(message)

    def partial(self, reason: str) -> None:
        """Mark the run as a partial result (exit 3) for `reason`."""
        self.partial_reasons.append(reason)

    def count(self, table: str, rows: int) -> None:
        """Add written rows to the per-table totals."""
        self.records[table] = self.records.get(table, 0) + rows

    def finish(self, exit_code: int) -> None:
        """Freeze the exit code and the elapsed time."""
        self.exit_code = exit_code
        self.duration_s = round(time.monotonic() - self.started, 3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, secrets masked: the one form in which a summary leaves the process
        (summary file, JSON log, ledger). The monotonic start time is internal."""
        from cdrfetch.redact import REDACTOR

        data = asdict(self)
        del data["started"]
        scrubbed: dict[str, Any] = REDACTOR.scrub(data)
        return scrubbed
