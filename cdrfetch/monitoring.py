"""What a scheduler and a monitoring system see of a run: the summary file, Prometheus metrics, pings.

`Monitor.run` wraps the whole of `pull`: whatever ends it (success, an expected error, a usage
mistake before any setting is read, an interruption, a bug), the summary (`--summary-json`) and the
metrics file (`--metrics-file` / `metrics_file`) are written, atomically, and the ping URL
(`--ping-url` / `ping_url`, healthchecks.io style) hears how it ended.

Metrics use the Prometheus text exposition format, for node_exporter's textfile collector. Pings are
bounded (PING_TIMEOUT) and never fail the run: a ping that does not arrive is one warning line. Their
body is the masked one-line result, never a secret.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cdrfetch import __version__
from cdrfetch.errors import BROKEN_PIPE, INTERRUPTED, CantCreateError, CdrfetchError, ExitCode
from cdrfetch.files import write_atomically
from cdrfetch.redact import REDACTOR
from cdrfetch.summary import RunSummary

PING_TIMEOUT = 10.0  # seconds one ping may take, connection to answer
BODY_LIMIT = 1000  # characters of the result sent with a ping
LABELS = ("provider", "profile", "account")
METRICS = {  # name -> (type, help)
    "cdrfetch_last_run_timestamp_seconds": ("gauge", "Unix time the last run ended."),
    "cdrfetch_last_success_timestamp_seconds": ("gauge", "Unix time the last successful run ended (0: none yet)."),
    "cdrfetch_run_duration_seconds": ("gauge", "How long the last run took."),
    "cdrfetch_records": ("gauge", "Records the last run wrote, per table."),
    "cdrfetch_retries_total": ("counter", "Retried requests, summed over the runs recorded in this file."),
    "cdrfetch_exit_code": ("gauge", "Exit code of the last run (0: success)."),
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (name, sorted labels) -> value


def read_samples(path: Path) -> Samples:
    """The samples of a metrics file written earlier (nothing when it is missing or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    samples: Samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(match.group(2) or "")))
        try:
            samples[(match.group(1), labels)] = float(match.group(3))
        except ValueError:
            continue
    return samples


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def render_metrics(summary: RunSummary, previous: Samples, now: float) -> str:
    """The run as a textfile-collector file; the last success and the retry count carry on from `previous`."""
    labels = {"provider": summary.provider, "profile": summary.profile, "account": summary.account}
    if not summary.account:  # ended before its settings were read: stay on the series of earlier runs
        for _, known in previous:
            found = dict(known)
            if found.get("provider") == summary.provider and found.get("profile") == summary.profile:
                labels["account"] = found.get("account", "")
                break
    key = tuple(sorted(labels.items()))
    ok = summary.exit_code == 0
    values: dict[str, list[tuple[dict[str, str], float]]] = {
        "cdrfetch_last_run_timestamp_seconds": [({}, round(now, 3))],
        "cdrfetch_last_success_timestamp_seconds": [
            ({}, round(now, 3) if ok else previous.get(("cdrfetch_last_success_timestamp_seconds", key), 0.0))
        ],
        "cdrfetch_run_duration_seconds": [({}, summary.duration_s)],
        "cdrfetch_records": [({"table": t}, float(n)) for t, n in ({"calls": 0} | summary.records).items()],
        "cdrfetch_retries_total": [({}, previous.get(("cdrfetch_retries_total", key), 0.0) + summary.retries)],
        "cdrfetch_exit_code": [({}, float(summary.exit_code))],
    }
    lines: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for extra, value in values[name]:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in {**labels, **extra}.items())
            lines.append(f"{name}{{{text}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def ping(url: str, body: str, log: logging.Logger) -> None:
    """POST `body` to `url` within PING_TIMEOUT; any failure is one warning line, never the run's."""
    host = urlsplit(url).hostname or "?"  # the rest of a ping URL is its key: never logged
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        log.warning("ping: ping_url is not an http(s) URL; nothing sent")  # any part of it may be its key
        return
    outcome: list[str] = []

    def send() -> None:
        import requests

        try:
            headers = {"User-Agent": f"cdrfetch/{__version__}", "Content-Type": "text/plain; charset=utf-8"}
            with requests.post(url, data=body.encode(), headers=headers, timeout=PING_TIMEOUT, stream=True) as answer:
                outcome.append(f"HTTP {answer.status_code}" if answer.status_code >= 400 else "")
        except Exception as exc:  # whatever goes wrong, a ping never takes the run down
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=send, name="cdrfetch-ping", daemon=True)
    thread.start()
    thread.join(PING_TIMEOUT)
    problem = outcome[0] if outcome else f"no answer within {PING_TIMEOUT:g}s"
    if problem:
        log.warning("ping to %s failed (%s); the run is not affected", host, problem)


class Monitor:
    """The closing outputs of one `pull`: summary file, metrics file, pings at the start and at the end."""

    def __init__(
        self,
        summary: RunSummary,
        log: logging.Logger,
        *,
        summary_json: str | None,
        metrics_file: str | None,
        ping_url: str | None,
    ) -> None:
        self.summary = summary
        self.log = log
        self.summary_json = summary_json
        self.metrics_file = metrics_file
        self.ping_url = ping_url
        self._started = False

    def start(self) -> None:
        """The start ping, once the ping URL is known (and masked everywhere: its path is a key)."""
        if self.ping_url:
            from cdrfetch.redact import REDACTOR

            REDACTOR.add(self.ping_url)
        if self.ping_url and not self._started:
            self._started = True
            ping(self.ping_url.rstrip("/") + "/start", f"cdrfetch {self.summary.provider} pull started", self.log)

    def configure(self, settings: Mapping[str, Any], *, dry_run: bool = False) -> None:
        """The profile's `metrics_file` and `ping_url`, where the command line named none (none for a dry
        run: it pulls nothing, so it must not tell monitoring that the job ran)."""
        if dry_run:
            self.metrics_file = self.ping_url = None
            return
        self.metrics_file = self.metrics_file or settings.get("metrics_file") or None
        self.ping_url = self.ping_url or settings.get("ping_url") or None
        self.start()

    def run(self, body: Callable[[], int]) -> int:
        """Run `body` (the pull); its end is reported whatever it is, then the error goes on to the CLI."""
        code: int = ExitCode.INTERNAL
        error: tuple[str, str | None] | None = None
        self.start()
        try:
            code = body()
            return code
        except CdrfetchError as failure:
            code, error = int(failure.exit_code), (failure.message, failure.hint)
            raise
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM
            code = getattr(stop, "exit_code", INTERRUPTED)
            error = ("interrupted" if code == INTERRUPTED else "terminated", None)
            raise
        except BrokenPipeError:
            code, error = BROKEN_PIPE, ("output pipe closed by the reader", None)
            raise
        except Exception as bug:
            error = (f"internal error (a bug): {type(bug).__name__}: {bug}", "please report it")
            raise
        finally:
            self.finish(code, error)

    def finish(self, code: int, error: tuple[str, str | None] | None) -> None:
        """Summary, metrics and the closing ping. A file that cannot be written fails a run that had not failed."""
        summary = self.summary
        if not summary.finished_at:
            summary.finish(code)
        if error is not None and summary.error is None:
            summary.fail(*error)
        problems: list[str] = []
        if self.summary_json:
            problems += self._write("summary", self.summary_json, json.dumps(summary.to_dict(), indent=2) + "\n")
        if self.metrics_file:
            path = Path(self.metrics_file).expanduser()
            problems += self._write("metrics", str(path), render_metrics(summary, read_samples(path), time.time()))
        if self.ping_url:
            self._closing_ping(code)
        if problems and code == 0:
            raise CantCreateError(problems[0], "check the path and its directory's permissions")
        for problem in problems:
            self.log.warning("%s", problem)

    def _write(self, what: str, target: str, text: str) -> list[str]:
        if target == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
            return []
        try:
            write_atomically(Path(target), text.encode("utf-8"))
        except OSError as exc:
            return [f"cannot write the {what} file {target}: {exc.strerror or exc}"]
        return []

    def _closing_ping(self, code: int) -> None:
        summary = self.summary
        if code == 0:
            counts = ", ".join(f"{rows} {table}" for table, rows in summary.records.items()) or "no records"
            result = f"exit 0: {counts} in {summary.duration_s:g}s"
        else:
            result = f"exit {code}: {summary.error or 'failed'}"
        body = REDACTOR(" ".join(f"cdrfetch {summary.provider} pull {result}".split()))[:BODY_LIMIT]
        url = str(self.ping_url).rstrip("/")
        ping(url if code == 0 else f"{url}/{code}", body, self.log)
