"""The top-level commands that are not a provider's: doctor, runs, maintain, sandbox serve, config init.

Each command's body is imported only when it runs, so `cdrfetch --help` stays light.
"""

# No `from __future__ import annotations` here: typer reads these commands' annotations at start-up,
# and evaluating them from strings costs about 5 % of `cdrfetch --help` (tests/bench/bench_startup.py).
from typing import Annotated

import typer

from cdrfetch import providers
from cdrfetch.clihelp import (
    PLAIN_HELP,
    ConfigOpt,
    JsonOpt,
    LimitOpt,
    LogFormatOpt,
    ProfileOpt,
    QuietOpt,
    SandboxOpt,
    VerboseOpt,
)
from cdrfetch.clirun import guarded

sandbox_app = typer.Typer(**PLAIN_HELP, help="Run the built-in provider emulators.")
config_app = typer.Typer(**PLAIN_HELP, help="Write a commented starter config file.")


@sandbox_app.command("serve")
def sandbox_serve(
    provider: Annotated[str, typer.Argument(help=f"One of: {', '.join(providers.names())}.")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 = any free port).")] = 0,
    knobs: Annotated[
        list[str] | None, typer.Option("--knob", help="Emulator knob NAME=VALUE (JSON, else text); repeatable.")
    ] = None,
    list_knobs: Annotated[bool, typer.Option("--list-knobs", help="List the knobs, their defaults, and exit.")] = False,
) -> None:
    """Run an emulator in the foreground and print the profile that points at it."""
    from cdrfetch.admin import run_sandbox_serve

    guarded(lambda: run_sandbox_serve(provider, port, knobs or [], list_knobs))


@config_app.command("init")
def config_init(
    provider: Annotated[
        list[str] | None, typer.Option("--provider", help="Only this provider (repeatable; default: all).")
    ] = None,
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a commented starter config (mode 0600) where cdrfetch looks for it."""
    from cdrfetch.admin import run_config_init

    guarded(lambda: run_config_init(provider or [], config, force))


def doctor(sandbox: SandboxOpt = False, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
    """Check every configured provider: config, keyring, TLS, clock, credentials."""
    from cdrfetch.doctor import run_checks

    guarded(lambda: run_checks(None, profile, config, sandbox))


def runs(
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Show the run ledger: window, records, files, checksum, outcome, duration."""
    from cdrfetch.admin import run_runs

    guarded(lambda: run_runs(provider, limit, as_json))


def maintain(
    destination: Annotated[str, typer.Argument(help="A Delta destination: a named one, a directory or a URL.")],
    apply: Annotated[bool, typer.Option("--apply", help="Do it (default: only show what would be done).")] = False,
    retention_hours: Annotated[
        int, typer.Option("--retention-hours", min=0, help="Vacuum files unreferenced for this long.")
    ] = 168,
    config: ConfigOpt = None,
) -> None:
    """Compact a Delta destination's small files and vacuum old ones (a dry run unless --apply)."""
    from cdrfetch.admin import run_maintain

    guarded(lambda: run_maintain(destination, config, apply, retention_hours))


DateOpt = Annotated[str | None, typer.Option("--date", "-d", help="day (yesterday), today or YYYY-MM-DD.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Window start: date, 'date HH:MM' or ISO-8601.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Window end (exclusive).")]
SinceLastOpt = Annotated[bool, typer.Option("--since-last", help="From each account's state to now.")]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="DIR/, URL or destination name.")]
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help="parquet, csv, jsonl, json or delta.")]
ProfilesOpt = Annotated[list[str] | None, typer.Option("--profile", "-p", help="Only this profile (repeatable).")]
ProvidersOpt = Annotated[list[str] | None, typer.Option("--provider", help="Only this provider (repeatable).")]


def pull(
    every: Annotated[bool, typer.Option("--all", help="Every account of every profile in the config.")] = False,
    date: DateOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    since_last: SinceLastOpt = False,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Accounts pulled at once.")] = 4,
    profiles: ProfilesOpt = None,
    only: ProvidersOpt = None,
    config: ConfigOpt = None,
    summary_json: Annotated[str | None, typer.Option("--summary-json", help="Combined summary (- for stdout).")] = None,
) -> None:
    """Pull every account of the config at once, e.g. `cdrfetch pull --all --since-last -o lake`."""
    from cdrfetch.errors import UsageError
    from cdrfetch.fleetrun import pull_all

    def body() -> int:
        if not every:
            raise UsageError("cdrfetch pull needs --all", "for one account use `cdrfetch <provider> pull`")
        window = [*(["--date", date] if date else []), *(["--from", start] if start else [])]
        window += [*(["--to", end] if end else []), *(["--since-last"] if since_last else [])]
        return pull_all(window, output=output, fmt=fmt, config_file=config, profiles=profiles or [], only=only or [],
                        jobs=jobs, summary_json=summary_json)  # fmt: skip

    guarded(body)


def plan(
    since_last: SinceLastOpt = False,
    start: FromOpt = None,
    end: ToOpt = None,
    output: OutputOpt = None,
    fmt: FormatOpt = None,
    profiles: ProfilesOpt = None,
    only: ProvidersOpt = None,
    shard_of: Annotated[str | None, typer.Option("--shard", metavar="INDEX/COUNT", help="Only this share.")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="One unit per line as JSON (for shell loops).")] = False,
) -> None:
    """Print the work units (one account's window chunk into one destination) for an orchestrator."""
    from cdrfetch.fleetrun import run_plan

    options = {"since_last": since_last, "start": start, "end": end, "output": output, "fmt": fmt,
               "config_file": config, "profiles": profiles or [], "only": only or []}  # fmt: skip
    guarded(lambda: run_plan(options, "jsonl" if jsonl else "json" if as_json else "text", shard_of))


def run_unit(
    unit: Annotated[str, typer.Argument(help="A unit as `plan` printed it, @FILE, or - (stdin: many units).")],
    config: ConfigOpt = None,
    summary_json: Annotated[str | None, typer.Option("--summary-json", help="Write the run summary here.")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
    log_format: LogFormatOpt = "text",
) -> None:
    """Run planned units: any machine, any order, any number of times, the same result."""
    from cdrfetch.fleetrun import run_units
    from cdrfetch.logs import LogOptions

    guarded(lambda: run_units(unit, config, summary_json, LogOptions(quiet=quiet, verbose=verbose, fmt=log_format)))


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(sandbox_app, name="sandbox")
    app.add_typer(config_app, name="config")
    for command in (doctor, runs, maintain, pull, plan):
        app.command()(command)
    app.command("run-unit")(run_unit)
