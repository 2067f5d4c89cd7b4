"""`pull`, once its options are parsed: resolve, lock, choose the window, run the pipeline, record the run.

Imported only when the command runs, so `cdrfetch --help` stays light.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdrfetch import config, crashpoints, destinations, locking, logs, monitoring, pipeline, providers, windows
from cdrfetch.client import Client, utc_now
from cdrfetch.errors import BROKEN_PIPE, INTERRUPTED, CdrfetchError, ExitCode, UsageError
from cdrfetch.ledger import Key, Ledger
from cdrfetch.logs import LogOptions
from cdrfetch.progress import Board
from cdrfetch.providers.base import Provider
from cdrfetch.redact import REDACTOR
from cdrfetch.summary import RunSummary
from cdrfetch.windows import parse_duration

if TYPE_CHECKING:
    from cdrfetch.fingerprints import FingerprintSet
    from cdrfetch.fleet import Unit


@dataclass(frozen=True, kw_only=True)
class PullOptions:
    """The options of `cdrfetch <provider> pull`."""

    provider: str
    date: str | None = None
    start: str | None = None
    end: str | None = None
    output: str | None = None
    fmt: str | None = None
    allow_partial: bool = False
    summary_json: str | None = None
    sandbox: bool = False
    profile: str | None = None
    config: str | None = None
    overrides: tuple[str, ...] = ()
    since_last: bool = False
    wait_lock: float = 0.0
    reset_state: bool = False
    yes: bool = False
    knobs: tuple[str, ...] = ()  # emulator knobs NAME=VALUE, with `sandbox`
    metrics_file: str | None = None
    ping_url: str | None = None
    account: str | None = None  # one of the provider section's `accounts:`
    unit: Unit | None = None  # a planned work unit: its window, anchor and id
    dry_run: bool = False  # say what would be pulled and where, without a request
    settings: Mapping[str, Any] = field(default_factory=dict)  # given by a caller of the Python API


@contextlib.contextmanager
def sandbox_settings(provider: str, enabled: bool, knobs: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Start the provider's emulator (with `knobs`) when asked; yields the settings that point at it."""
    if not enabled:
        if knobs:
            raise UsageError("--knob sets an emulator knob", "add --sandbox")
        yield {}
        return
    from cdrfetch import sandbox

    server = sandbox.serve(provider, sandbox.parse_knobs(knobs))
    try:
        yield server.emulator.profile(server.url)
    finally:
        server.stop()


def resolve_settings(
    provider: str,
    profile: str | None,
    config_file: str | None,
    overrides: Sequence[str],
    injected: dict[str, Any],
    account: str | None = None,
) -> config.Resolved:
    """Every setting of `provider` (for one of its `accounts:`), with sources; secrets registered for redaction."""
    cls = providers.load(provider)
    parsed = config.parse_overrides(list(overrides), cls.all_settings())
    resolved = config.resolve(
        provider, cls.all_settings(), config=config_file, profile=profile, overrides=parsed, injected=injected,
        account=account,
    )  # fmt: skip
    REDACTOR.add(*resolved.secret_values())
    return resolved


def run_pull(options: PullOptions, output: LogOptions, summary: RunSummary | None = None) -> int:
    """`pull`: resolve, lock, choose the window, fetch, write, record in the ledger, report. The summary
    (filled in `summary` when given), metrics and pings report the run however it ends (a dry run: none)."""
    known_format = output.fmt in ("text", "json")
    log = logs.configure(verbose=output.verbose, quiet=output.quiet, fmt=output.fmt if known_format else "text")
    summary = summary or new_summary(options)
    both_on_stdout = options.summary_json == "-" and options.output == "-"
    real = not options.dry_run
    monitor = monitoring.Monitor(
        summary, log, summary_json=None if both_on_stdout else options.summary_json,
        metrics_file=options.metrics_file if real else None, ping_url=options.ping_url if real else None,
    )  # fmt: skip
    return monitor.run(lambda: _pull(options, output, monitor, log))


def new_summary(options: PullOptions) -> RunSummary:
    """The summary a run starts with: the profile asked for, until the settings name it exactly."""
    return RunSummary(options.provider, "", config.profile_choice(options.profile)[0], "", "")


def _check_output_options(options: PullOptions, output: LogOptions) -> None:
    """Mistakes in the logging and reporting options."""
    if output.fmt not in ("text", "json"):
        raise UsageError(f"--log-format {output.fmt!r}", "use text or json")
    if output.quiet and output.verbose:
        raise UsageError("-q and -v cannot be combined", "use -q for warnings and errors only, -v/-vv for more")
    if options.summary_json == "-" and options.output == "-":
        raise UsageError("--summary-json - and -o - both write to stdout", "write one of them to a file")


def _pull(options: PullOptions, output: LogOptions, monitor: monitoring.Monitor, log: logging.Logger) -> int:
    _check_output_options(options, output)
    destinations.choose(options.output, options.fmt, config_file=options.config)  # usage errors first
    _check_window_options(options)
    cls = providers.load(options.provider)
    summary = monitor.summary
    with sandbox_settings(options.provider, options.sandbox, options.knobs) as injected:
        injected.update(options.settings)
        settings = resolve_settings(
            options.provider, options.profile, options.config, options.overrides, injected, options.account
        )
        summary.profile = settings.profile
        monitor.configure(settings, dry_run=options.dry_run)
        settings.require_complete()
        if options.sandbox:  # said once the settings are known to be usable, not before a config error
            log.info("sandbox: %s emulator listening on %s", options.provider, settings["base_url"])
        key = Key(cls.name, settings.profile, cls.account_of(settings))
        summary.account = key.account
        destination = destinations.choose(
            options.output, options.fmt, config_file=options.config, file_layout=str(settings["layout"])
        )
        with locking.exclusive(key, options.wait_lock):
            ledger = Ledger().check()  # a bad ledger fails here, before any request or output
            if options.reset_state:
                from cdrfetch.admin import reset_state

                reset_state(ledger, key, options.yes, log, destination)
            started = utc_now().replace(microsecond=0)
            state = State(ledger, destination, key)
            window = choose_window(options, state, settings, started, log)
            if window is None:
                log.info("%s: nothing to pull, %s is up to date", key.provider, state.holder)
                return int(ExitCode.OK)
            if options.dry_run:
                from cdrfetch.preview import dry_run

                return dry_run(cls, settings, window, destination)
            RecordedPull(options, output, cls, settings, ledger, key, log, summary).run(window, destination, started)
    for entry in summary.files:
        log.info("wrote %d %s records to %s", entry["rows"], entry["table"], entry["path"])
    return int(ExitCode.OK)


def _check_window_options(options: PullOptions) -> None:
    """Mistakes in --date/--from/--to/--since-last, reported before any setting or secret is read."""
    if options.since_last and (options.date or options.start or options.end):
        raise UsageError("--since-last cannot be combined with --date/--from/--to", "use one or the other")
    if options.dry_run and options.reset_state:
        raise UsageError("--dry-run cannot --reset-state", "a dry run changes nothing; drop one of them")
    if not options.since_last:  # parsed in UTC here: the profile's zone only shifts a valid window
        windows.from_options(day=options.date, start=options.start, end=options.end, tz=windows.UTC, now=utc_now())


@dataclass(frozen=True)
class State:
    """Where --since-last resumes from: the destination when it keeps the state (tables), else the ledger."""

    ledger: Ledger
    destination: destinations.Destination
    key: Key

    @property
    def holder(self) -> str:
        return self.destination.describe() if self.destination.keeps_state else "the ledger"

    def resume_point(self) -> datetime | None:
        if self.destination.keeps_state:
            return self.destination.resume_point(self.key.provider, self.key.account)
        return self.ledger.resume_point(self.key)


def choose_window(
    options: PullOptions, state: State, settings: config.Resolved, now: datetime, log: logging.Logger
) -> windows.Window | None:
    """The unit's window, the explicit one, or for --since-last: from the state's resume point (minus
    lookback) to now."""
    tz = windows.zone(str(settings["tz"]))
    if options.unit is not None:
        return options.unit.window(tz)
    if not options.since_last:
        return windows.from_options(day=options.date, start=options.start, end=options.end, tz=tz, now=now)
    resumed = state.resume_point()
    if resumed is None:  # first run: start with yesterday, like --date day
        start = windows.from_options(day="day", start=None, end=None, tz=tz, now=now).start
    else:
        if resumed > now:  # the clock went back since that run (or it ran with the clock ahead)
            log.warning(
                "%s: %s is recorded complete until %s, after now (%s): the clock moved back; resuming from now",
                state.holder, state.key.provider, resumed.astimezone(tz).isoformat(), now.astimezone(tz).isoformat(),
            )  # fmt: skip
            resumed = now
        start = resumed - parse_duration(str(settings["lookback"]))
    # Named by its start only: a re-run after a crash resumes at the same start and so replaces
    # the same file instead of writing its rows a second time under another name.
    name = f"since-{start.astimezone(tz):%Y%m%dT%H%M%S}"
    return windows.Window(start, now, tz, name=name) if start < now else None


@dataclass
class RecordedPull:
    """One pull whose settings are resolved and whose lock is held: run it, then record it, whatever happens."""

    options: PullOptions
    output: LogOptions
    cls: type[Provider]
    settings: config.Resolved
    ledger: Ledger
    key: Key
    log: logging.Logger
    summary: RunSummary

    def run(self, window: windows.Window, destination: destinations.Destination, started: datetime) -> RunSummary:
        """Pull `window`; the ledger is written even when the pull fails."""
        key, summary = self.key, self.summary
        summary.window_start, summary.window_end = window.start.isoformat(), window.end.isoformat()
        overlap = self.options.since_last and not destination.keeps_state  # tables drop repeats themselves
        already = self.ledger.written_since(key, window.start) if overlap else {}
        code: int = ExitCode.INTERNAL
        written: pipeline.Written | None = None
        try:
            written = self._pull(window, destination, summary, already, started)
            if written.partial is not None:
                raise written.partial
            code = ExitCode.OK
        except CdrfetchError as error:
            code = error.exit_code
            summary.fail(error.message, error.hint)
            raise
        except BrokenPipeError:
            code = BROKEN_PIPE
            raise
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (errors.Terminated)
            code = getattr(stop, "exit_code", INTERRUPTED)
            raise
        finally:
            self._record(summary, int(code), written, started)
        return summary

    def _pull(
        self,
        window: windows.Window,
        destination: destinations.Destination,
        summary: RunSummary,
        already: dict[str, FingerprintSet],
        started: datetime,
    ) -> pipeline.Written:
        board = Board(enabled=not self.output.quiet and self.output.fmt == "text")
        unit = self.options.unit
        log = logging.getLogger(f"{logs.ROOT}.{self.cls.name}")
        with board, Client(self.settings, log=log, summary=summary, progress=board) as client:
            return pipeline.pull(
                self.cls(self.settings, client),
                window,
                pipeline.Services(summary, board, client.scratch(), started),
                destination,
                allow_partial=self.options.allow_partial or bool(self.settings["allow_partial"]),
                already=already,
                anchor=unit.anchor if unit else None,
                unit_id=unit.id if unit else None,
            )

    def _record(self, summary: RunSummary, code: int, written: pipeline.Written | None, started: datetime) -> None:
        """The run in the ledger (complete never beyond its start: later data did not exist yet) and the summary."""
        summary.finish(code)
        crashpoints.reach("before-ledger")
        complete = pipeline.complete_until(summary) if written is not None else None
        self.ledger.record(
            self.key, summary, min(complete, started) if complete else None, written.ids if written else {}
        )
        if self.output.fmt == "json":
            self.log.info("run summary", extra={"fields": {"summary": summary.to_dict()}})
