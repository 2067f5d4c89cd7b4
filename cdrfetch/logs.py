"""Logging to stderr: human text or JSON lines, always through the redactor."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass

from cdrfetch.redact import REDACTOR, RedactingFilter

ROOT = "cdrfetch"
_format = "text"  # the form of the CLI's final lines (see `final`), set by `configure`


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    """How much a run logs to stderr, and in which form: `quiet` (warnings and errors only), `verbose`
    (1: as the default, 2: one line per HTTP exchange), `fmt` "text" or "json" (one object a line)."""

    quiet: bool = False
    verbose: int = 0
    fmt: str = "text"


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
        entry = _entry(record.created, record.levelname.lower(), record.name, record.getMessage())
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _entry(created: float, level: str, logger: str, message: str) -> dict[str, object]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created * 1000) % 1000:03d}Z"
    return {"ts": stamp, "level": level, "logger": logger, "msg": message}


def final(
    message: str,
    hint: str | None = None,
    *,
    prefix: str = "error: ",
    details: list[str] | None = None,
    **fields: object,
) -> None:
    """One of the CLI's closing lines (an error and its hint, an interruption, a bug's traceback `details`),
    redacted, in the run's log format: `cdrfetch: error: ...` + `  hint: ...` as text, one JSON object
    (with `hint`, `traceback`) in JSON."""
    message, hint = REDACTOR(message), REDACTOR(hint) if hint else None
    trace = REDACTOR("".join(details)).rstrip() if details else None
    if _format == "json":
        entry = _entry(time.time(), "error", ROOT, message)
        entry.update({"hint": hint} if hint else {}, **({"traceback": trace} if trace else {}), **fields)
        sys.stderr.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
    else:
        lines = [trace] if trace else []
        lines += [f"cdrfetch: {prefix}{message}"] + ([f"  hint: {hint}"] if hint else [])
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def reset() -> None:
    """Back to text for the CLI's closing lines (a command that did not configure logging)."""
    global _format
    _format = "text"


def configure(*, verbose: int = 0, quiet: bool = False, fmt: str = "text") -> logging.Logger:
    """Install the single stderr handler on the `cdrfetch` logger (idempotent).

    Default and `-v`: info; `-vv`: debug, with one line per HTTP exchange; `-q`: warnings and errors.
    """
    global _format
    _format = fmt
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = StderrHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("cdrfetch: %(levelname)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO)
    logger.propagate = False
    return logger
