"""The top-level commands that are not a provider's: doctor, runs, maintain, sandbox serve, config init.

Each command's body is imported only when it runs, so `cdrfetch --help` stays light.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cdrfetch import providers
from cdrfetch.clihelp import PLAIN_HELP, ConfigOpt, JsonOpt, LimitOpt, ProfileOpt, SandboxOpt
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


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(sandbox_app, name="sandbox")
    app.add_typer(config_app, name="config")
    for command in (doctor, runs, maintain):
        app.command()(command)
