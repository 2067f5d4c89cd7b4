"""The command line: one sub-app per registered provider, built from the registry.

Only typer and the provider names are loaded at start-up (`cdrfetch --help` stays fast);
everything else is imported inside the commands.
"""

# No `from __future__ import annotations` here: typer reads these commands' annotations at start-up,
# and evaluating them from strings costs about 5 % of `cdrfetch --help` (tests/bench/bench_startup.py).
import os
import sys
from typing import Annotated, Any

import typer

from cdrfetch import __version__, clitools, providers
from cdrfetch.clihelp import (  # the options shared by several commands
    PLAIN_HELP,
    AccountOpt,
    ConfigOpt,
    JsonOpt,
    LimitOpt,
    LogFormatOpt,
    ProfileOpt,
    QuietOpt,
    RootGroup,
    SandboxOpt,
    SetOpt,
    VerboseOpt,
    polish,
    provider_help,
    titled_help,
)  # fmt: skip
from cdrfetch.clirun import guarded


class ProviderGroups(RootGroup):
    """The root group: a provider's sub-commands are built only when that provider is used.

    Typer turns every command's signature into options at start-up; for four providers that was
    most of the time `cdrfetch --help` took, to describe commands it does not show.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return [*providers.names(), *super().list_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in providers.names():
            group = typer.main.get_group(provider_app(cmd_name))
            group.name = cmd_name
            self.commands[cmd_name] = polish(group, "<provider>", cmd_name)
        command = super().get_command(ctx, cmd_name)
        return polish(command, cmd_name) if command is not None else None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, provider_help(name)) for name in providers.names()]
        rows += [
            (name, command.get_short_help_str(60))
            for name, command in self.commands.items()
            if name not in providers.names()
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    **PLAIN_HELP,
    cls=ProviderGroups,
    name="cdrfetch",
    help="Pull call detail records from telecom and CPaaS providers.",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def provider_app(name: str) -> typer.Typer:
    """The `cdrfetch <provider>` group: the same commands for every provider."""
    group = typer.Typer(**PLAIN_HELP, help=titled_help(name))
    for add in (_add_pull, _add_login, _add_config, _add_check, _add_runs):
        add(group, name)
    return group


def _add_pull(group: typer.Typer, name: str) -> None:
    @group.command()
    def pull(
        date: Annotated[str | None, typer.Option("--date", "-d", help="day (yesterday), today or YYYY-MM-DD.")] = None,
        start: Annotated[
            str | None, typer.Option("--from", help="Window start: date, 'date HH:MM' or ISO-8601.")
        ] = None,
        end: Annotated[str | None, typer.Option("--to", help="Window end (exclusive).")] = None,
        output: Annotated[str | None, typer.Option("--output", "-o", help="FILE, DIR/ or - for stdout.")] = None,
        fmt: Annotated[str | None, typer.Option("--format", "-f", help="parquet, csv, jsonl or json.")] = None,
        allow_partial: Annotated[
            bool, typer.Option("--allow-partial", help="Exit 0 on provider-reported partial data.")
        ] = False,
        summary_json: Annotated[
            str | None, typer.Option("--summary-json", help="Write the run summary as JSON here (- for stdout).")
        ] = None,
        metrics_file: Annotated[str | None, typer.Option("--metrics-file", help="Prometheus metrics file.")] = None,
        ping_url: Annotated[str | None, typer.Option("--ping-url", help="Ping this URL at start and end.")] = None,
        since_last: Annotated[
            bool, typer.Option("--since-last", help="From the end of the last completed run (minus `lookback`) to now.")
        ] = False,
        wait_lock: Annotated[
            float, typer.Option("--wait-lock", metavar="SECONDS", help="Wait this long for a concurrent run.")
        ] = 0.0,
        reset_state: Annotated[
            bool, typer.Option("--reset-state", help="Forget this account's run ledger first.")
        ] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show the window, chunks and destination only.")
        ] = False,
        sandbox: SandboxOpt = False,
        knobs: Annotated[
            list[str] | None, typer.Option("--knob", metavar="NAME=VALUE", help="Emulator knob, with --sandbox.")
        ] = None,
        profile: ProfileOpt = None,
        account: AccountOpt = None,
        config: ConfigOpt = None,
        overrides: SetOpt = None,
        quiet: QuietOpt = False,
        verbose: VerboseOpt = 0,
        log_format: LogFormatOpt = "text",
    ) -> None:
        """Pull the records of a window and write them (default: yesterday, Parquet under cdrs/)."""
        from cdrfetch import api

        log = api.LogOptions(quiet=quiet, verbose=verbose, fmt=log_format)
        guarded(lambda: api.pull(
            name, date=date, start=start, end=end, output=output, format=fmt, allow_partial=allow_partial,
            summary_json=summary_json, sandbox=sandbox, profile=profile, config=config, overrides=overrides or (),
            since_last=since_last, wait_lock=wait_lock, reset_state=reset_state, yes=yes, knobs=knobs or (),
            metrics_file=metrics_file, ping_url=ping_url, account=account, dry_run=dry_run, log=log,
        )["exit_code"])  # fmt: skip


def _add_login(group: typer.Typer, name: str) -> None:
    @group.command()
    def login(
        key: Annotated[str | None, typer.Option("--key", help="Store only this secret (default: all).")] = None,
        delete: Annotated[bool, typer.Option("--delete", help="Remove the stored secret(s) instead.")] = False,
        profile: ProfileOpt = None,
        account: AccountOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        """Store the provider's secrets in the OS keyring (hidden prompt, or stdin when piped)."""
        from cdrfetch.admin import run_login

        guarded(lambda: run_login(name, profile, key, delete, config, account))


def _add_config(group: typer.Typer, name: str) -> None:
    @group.command("config")
    def show_config(
        as_json: JsonOpt = False,
        sandbox: SandboxOpt = False,
        profile: ProfileOpt = None,
        account: AccountOpt = None,
        config: ConfigOpt = None,
        overrides: SetOpt = None,
    ) -> None:
        """Show every resolved setting with its source (secrets masked)."""
        from cdrfetch.admin import run_show_config

        guarded(lambda: run_show_config(name, profile, config, overrides or [], sandbox, as_json, account))


def _add_check(group: typer.Typer, name: str) -> None:
    @group.command()
    def check(sandbox: SandboxOpt = False, profile: ProfileOpt = None, config: ConfigOpt = None) -> None:
        """Check settings, TLS, clock and credentials with one cheap signed request."""
        from cdrfetch.doctor import run_checks

        guarded(lambda: run_checks(name, profile, config, sandbox))


def _add_runs(group: typer.Typer, name: str) -> None:
    @group.command("runs")
    def provider_runs(limit: LimitOpt = 20, as_json: JsonOpt = False) -> None:
        """Show this provider's run ledger."""
        from cdrfetch.admin import run_runs

        guarded(lambda: run_runs(name, limit, as_json))


clitools.register(app)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"cdrfetch {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Pull call detail records from telecom and CPaaS providers."""


def main(argv: list[str] | None = None) -> Any:
    """Console entry point."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    _settle_memory()
    return app(args=argv if argv is not None else sys.argv[1:], prog_name="cdrfetch")


def _settle_memory() -> None:
    """Arrow's buffers from jemalloc, which hands freed pages back after 100 ms of disuse.

    Arrow's default allocator (mimalloc) keeps what a large export freed: a 1M-row pull peaked
    about 100 MB higher with it, for about 4 % less CPU. Set before pyarrow loads, and only where
    its wheels bring jemalloc (Linux); ARROW_DEFAULT_MEMORY_POOL or JE_ARROW_MALLOC_CONF set by the
    user win.
    """
    if sys.platform.startswith("linux"):
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
        os.environ.setdefault("JE_ARROW_MALLOC_CONF", "dirty_decay_ms:100,muzzy_decay_ms:0")


def _terminate(signum: int, frame: object) -> None:
    from cdrfetch.errors import Terminated

    raise Terminated
