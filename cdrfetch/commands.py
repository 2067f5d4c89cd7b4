"""What the CLI commands do, once their options are parsed (imported only when a command runs)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdrfetch import config, crashpoints, locking, logs, pipeline, providers, sinks, windows
from cdrfetch.client import Client, utc_now
from cdrfetch.errors import BROKEN_PIPE, INTERRUPTED, CdrfetchError, ExitCode, UsageError
from cdrfetch.files import write_atomically
from cdrfetch.ledger import Key, Ledger
from cdrfetch.progress import Board
from cdrfetch.providers.base import Provider
from cdrfetch.redact import REDACTOR
from cdrfetch.summary import RunSummary
from cdrfetch.windows import parse_duration


@dataclass(frozen=True)
class PullOptions:
    """The options of `cdrfetch <provider> pull`."""

    provider: str
    date: str | None
    start: str | None
    end: str | None
    output: str | None
    fmt: str | None
    allow_partial: bool
    summary_json: str | None
    sandbox: bool
    profile: str | None
    config: str | None
    overrides: list[str]
    since_last: bool = False
    wait_lock: float = 0.0
    reset_state: bool = False
    yes: bool = False


@contextlib.contextmanager
def sandbox_settings(provider: str, enabled: bool) -> Iterator[dict[str, Any]]:
    """Start the provider's emulator when asked; yields the settings that point at it."""
    if not enabled:
        yield {}
        return
    from cdrfetch import sandbox

    server = sandbox.serve(provider)
    logging.getLogger(logs.ROOT).info("sandbox: %s emulator listening on %s", provider, server.url)
    try:
        yield server.emulator.profile(server.url)
    finally:
        server.stop()


def resolve_settings(
    provider: str, profile: str | None, config_file: str | None, overrides: list[str], injected: dict[str, Any]
) -> config.Resolved:
    """Every setting of `provider`, with sources; secrets registered for redaction."""
    cls = providers.load(provider)
    parsed = config.parse_overrides(overrides, cls.all_settings())
    resolved = config.resolve(
        provider, cls.all_settings(), config=config_file, profile=profile, overrides=parsed, injected=injected
    )
    REDACTOR.add(*resolved.secret_values())
    return resolved


def run_pull(options: PullOptions, *, quiet: bool, verbose: int, log_format: str) -> int:
    """`pull`: resolve, lock, choose the window, fetch, write, record in the ledger, report."""
    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format {log_format!r}", "use text or json")
    log = logs.configure(verbose=verbose, quiet=quiet, fmt=log_format)
    fmt = sinks.format_for(options.output, options.fmt)
    _check_window_options(options)
    cls = providers.load(options.provider)
    with sandbox_settings(options.provider, options.sandbox) as injected:
        settings = resolve_settings(options.provider, options.profile, options.config, options.overrides, injected)
        settings.require_complete()
        key = Key(cls.name, settings.profile, cls.account_of(settings))
        with locking.exclusive(key, options.wait_lock):
            ledger = Ledger()
            if options.reset_state:
                _reset_state(ledger, key, options.yes, log)
            window = _choose_window(options, ledger, key, settings)
            if window is None:
                log.info("%s: nothing to pull, the ledger is up to date", key.provider)
                return int(ExitCode.OK)
            seen = ledger.written_since(key, window.start) if options.since_last else {}
            summary = _pull_and_record(options, cls, settings, window, fmt, ledger, key, seen, log, quiet, log_format)
    for entry in summary.files:
        log.info("wrote %d %s records to %s", entry["rows"], entry["table"], entry["path"])
    return int(ExitCode.OK)


def _check_window_options(options: PullOptions) -> None:
    """Mistakes in --date/--from/--to/--since-last, reported before any setting or secret is read."""
    if options.since_last and (options.date or options.start or options.end):
        raise UsageError("--since-last cannot be combined with --date/--from/--to", "use one or the other")
    if not options.since_last:  # parsed in UTC here: the profile's zone only shifts a valid window
        windows.from_options(day=options.date, start=options.start, end=options.end, tz=windows.UTC, now=utc_now())


def _choose_window(options: PullOptions, ledger: Ledger, key: Key, settings: config.Resolved) -> windows.Window | None:
    """The explicit window, or for --since-last: from the ledger's resume point (minus lookback) to now."""
    tz = windows.zone(str(settings["tz"]))
    now = utc_now().replace(microsecond=0)
    if not options.since_last:
        return windows.from_options(day=options.date, start=options.start, end=options.end, tz=tz, now=now)
    resumed = ledger.resume_point(key)
    if resumed is None:  # first run: start with yesterday, like --date day
        start = windows.from_options(day="day", start=None, end=None, tz=tz, now=now).start
    else:
        start = resumed - parse_duration(str(settings["lookback"]))
    # Named by its start only: a re-run after a crash resumes at the same start and so replaces
    # the same file instead of writing its rows a second time under another name.
    name = f"since-{start.astimezone(tz):%Y%m%dT%H%M%S}"
    return windows.Window(start, now, tz, name=name) if start < now else None


def _pull_and_record(
    options: PullOptions,
    cls: type[Provider],
    settings: config.Resolved,
    window: windows.Window,
    fmt: str,
    ledger: Ledger,
    key: Key,
    seen: dict[str, set[str]],
    log: logging.Logger,
    quiet: bool,
    log_format: str,
) -> RunSummary:
    """Run the pipeline; whatever happens, record the run in the ledger and emit the summary."""
    already = {table: set(ids) for table, ids in seen.items()}
    summary = RunSummary(cls.name, key.account, key.profile, window.start.isoformat(), window.end.isoformat())
    code: int = ExitCode.INTERNAL
    try:
        with (
            Board(enabled=not quiet and log_format == "text") as board,
            Client(
                settings, log=logging.getLogger(f"{logs.ROOT}.{cls.name}"), summary=summary, progress=board
            ) as client,
        ):
            pipeline.pull(
                cls(settings, client),
                window,
                output=options.output,
                fmt=fmt,
                allow_partial=options.allow_partial or bool(settings["allow_partial"]),
                seen=seen,
            )
        code = ExitCode.OK
    except CdrfetchError as error:
        code = error.exit_code
        raise
    except BrokenPipeError:
        code = BROKEN_PIPE
        raise
    except KeyboardInterrupt:
        code = INTERRUPTED
        raise
    finally:
        summary.finish(int(code))
        crashpoints.reach("before-ledger")
        written = code in (ExitCode.OK, ExitCode.PARTIAL)
        ledger.record(
            key,
            summary,
            pipeline.complete_until(summary) if written else None,
            {table: ids - already.get(table, set()) for table, ids in seen.items()} if written else {},
        )
        _emit_summary(summary, options.summary_json, log_format, log)
    return summary


def _reset_state(ledger: Ledger, key: Key, yes: bool, log: logging.Logger) -> None:
    """Forget the ledger of `key` after confirmation (never prompts without a terminal)."""
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("--reset-state needs confirmation", "add --yes when running without a terminal")
        answer = input(
            f"Forget every recorded run of {key.provider} account {key.account} (profile {key.profile})? [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            raise UsageError("--reset-state not confirmed", "answer y, or pass --yes")
    removed = ledger.reset(key)
    log.warning("ledger: forgot %d run(s) of %s account %s", removed, key.provider, key.account)


def _emit_summary(summary: RunSummary, path: str | None, log_format: str, log: logging.Logger) -> None:
    """The run summary to `--summary-json PATH` (atomically) and, with JSON logs, to stderr."""
    data = summary.to_dict()
    if path:
        write_atomically(Path(path), json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"))
    if log_format == "json":
        log.info("run summary", extra={"fields": {"summary": data}})
