"""Account administration commands: login, config, runs, sandbox serve."""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from typing import Any

from cdrfetch import config, keystore, providers
from cdrfetch.commands import resolve_settings, sandbox_settings
from cdrfetch.errors import ExitCode, UsageError


def run_login(provider: str, profile: str | None, key: str | None, delete: bool) -> int:
    """`login`: store (or delete) the provider's secrets in the keyring."""
    cls = providers.load(provider)
    secrets = [s for s in cls.all_settings() if s.secret and (key is None or s.name == key)]
    if not secrets:
        raise UsageError(f"{provider} has no secret named {key!r}", "run without --key to store all of them")
    profile_name = profile or os.environ.get("CDRFETCH_PROFILE") or "default"
    for setting in secrets:
        user = config.keyring_user(profile_name, provider, setting.name)
        if delete:
            removed = keystore.delete(user)
            print(f"{'removed' if removed else 'no stored'} {setting.name} for profile {profile_name}", file=sys.stderr)
            continue
        keystore.put(user, _read_secret(setting.name, setting.help))
        print(f"stored {setting.name} for {provider} in the keyring (profile {profile_name})", file=sys.stderr)
    return 0


def _read_secret(name: str, help_text: str) -> str:
    """A secret from a hidden prompt on a terminal, or one line of stdin otherwise."""
    value = getpass.getpass(f"{name} ({help_text}): ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise UsageError(f"empty value for {name}", "type the secret, or pipe it on stdin")
    return value


def run_show_config(
    provider: str, profile: str | None, config_file: str | None, overrides: list[str], sandbox: bool, as_json: bool
) -> int:
    """`config`: every setting, its value (secrets masked) and its source."""
    cls = providers.load(provider)
    with sandbox_settings(provider, sandbox) as injected:
        resolved = resolve_settings(provider, profile, config_file, overrides, injected)
    rows = []
    for setting in cls.all_settings():
        value = resolved[setting.name]
        shown = None if value is None else ("********" if setting.secret else value)
        source = resolved.source(setting.name) if value is not None else ("MISSING" if setting.is_required else "unset")
        rows.append({"setting": setting.name, "value": shown, "source": source, "secret": setting.secret})
    if as_json:
        print(
            json.dumps(
                {
                    "provider": provider,
                    "profile": resolved.profile,
                    "config_file": str(resolved.config_path),
                    "settings": rows,
                },
                indent=2,
                default=str,
            )
        )
    else:
        _print_table(provider, resolved, rows)
    return int(ExitCode.CONFIG) if resolved.missing else 0


def _print_table(provider: str, resolved: config.Resolved, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{provider} — profile {resolved.profile} — {resolved.config_path or 'no config file'}")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["setting"], "" if row["value"] is None else str(row["value"]), row["source"])
    Console(soft_wrap=True).print(table)


def run_sandbox_serve(provider: str, port: int) -> int:
    """`sandbox serve`: run an emulator until interrupted, printing the profile to use."""
    import yaml

    from cdrfetch import sandbox
    from cdrfetch.sandbox.server import SandboxServer

    if provider not in providers.names():
        raise UsageError(f"unknown provider {provider!r}", f"one of: {', '.join(providers.names())}")
    server = SandboxServer(sandbox.emulator_class(provider)(), port=port).start()
    profile = server.emulator.profile(server.url)
    print(f"# {provider} emulator on {server.url} — press Ctrl-C to stop", flush=True)
    print(yaml.safe_dump({"profiles": {"sandbox": {provider: profile}}}, sort_keys=False), flush=True)
    print(
        f"# save as sandbox.yaml (chmod 600), then: cdrfetch {provider} pull --config sandbox.yaml --profile sandbox",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()


def run_runs(provider: str | None, limit: int, as_json: bool) -> int:
    """`runs`: the run ledger, newest first."""
    from cdrfetch.ledger import Ledger

    rows = Ledger().runs(provider, limit)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    columns = ("id", "finished", "provider", "account", "window", "outcome", "records", "files", "checksum", "secs")
    lines = [_run_cells(row) for row in rows]
    if not sys.stdout.isatty():  # scripts get plain tab-separated lines, never truncated
        print("\t".join(columns))
        for cells in lines:
            print("\t".join(cells))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cdrfetch runs{' of ' + provider if provider else ''} (newest first)")
    for column in columns:
        table.add_column(column)
    for cells in lines:
        table.add_row(*cells)
    Console().print(table)
    return 0


def _run_cells(row: dict[str, Any]) -> list[str]:
    """One ledger row as display cells."""
    records = " ".join(f"{name}={count}" for name, count in row["records"].items()) or "0"
    return [
        str(row["id"]), row["finished_at"], row["provider"], row["account"],
        f"{row['window_start']} -> {row['window_end']}", f"{row['outcome']} ({row['exit_code']})", records,
        str(len(row["files"])), (row["checksum"] or "")[:12], f"{row['duration_s']:.1f}",
    ]  # fmt: skip
