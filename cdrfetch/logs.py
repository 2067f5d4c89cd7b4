"""Logging to stderr: human text or JSON lines, always through the redactor."""

from __future__ import annotations

import json
import logging
import sys
import time

from cdrfetch.redact import RedactingFilter

ROOT = "cdrfetch"


class StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the moment of each record (so redirections apply)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never take the run down
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (+ fields passed as `extra`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(*, verbose: int = 0, quiet: bool = False, fmt: str = "text") -> logging.Logger:
    """Install the single stderr handler on the `cdrfetch` logger (idempotent)."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = StderrHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("cdrfetch: %(levelname)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    return logger
