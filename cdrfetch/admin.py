"""Account administration commands: login, config, runs, sandbox serve."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from cdrfetch import accounts, config, keystore, providers
from cdrfetch.commands import resolve_settings, sandbox_settings
from cdrfetch.errors import ConfigError, UsageError, suggest
from cdrfetch.files import write_atomically
from cdrfetch.ledger import Key, Ledger
from cdrfetch.preview import setting_rows
from cdrfetch.providers.base import Setting

if TYPE_CHECKING:
    from cdrfetch.destinations import Destination


def run_login(
    provider: str,
    profile: str | None,
    key: str | None,
    delete: bool,
    config_file: str | None = None,
    account: str | None = None,
) -> int:
    """`login`: store (or delete) the provider's secrets in the keyring, and read each one back."""
    cls = providers.load(provider)
    secrets = [s for s in cls.all_settings() if s.secret and (key is None or s.name == key)]
    if not secrets:
        raise UsageError(f"{provider} has no secret named {key!r}", "run without --key to store all of them")
    problem = keystore.backend_problem()
    if problem:  # the fail and null backends would accept the secret and store nothing
        raise ConfigError(f"keyring: {problem}; nothing would be stored", keystore.HEADLESS_HINT)
    profile_name, named = config.profile_choice(profile)
    if named or account:
        _warn_unknown_target(profile_name, provider, account, config_file)
    for setting in secrets:
        user = config.keyring_user(profile_name, f"{provider}/{account}" if account else provider, setting.name)
        if delete:
            removed = keystore.delete(user)
            print(f"{'removed' if removed else 'no stored'} {setting.name} for profile {profile_name}", file=sys.stderr)
            continue
        secret = _read_secret(setting.name, setting.help)
        keystore.put(user, secret)
        if keystore.get(user) != secret:
            raise ConfigError(f"keyring: {setting.name} did not read back after storing it", keystore.HEADLESS_HINT)
        print(f"stored {setting.name} for {provider} in the keyring (profile {profile_name})", file=sys.stderr)
    return 0


def _warn_unknown_target(profile: str, provider: str, account: str | None, config_file: str | None) -> None:
    """A secret stored under a profile or account the config file does not have is probably a typo: say so."""
    path, _named = config.config_path(config_file)
    try:
        known = config.read_profiles(path) if path.exists() else {}
    except ConfigError:
        return  # a broken file is reported by the commands that read it
    where = f"{path}" if path.exists() else f"{path} (no such file)"
    if profile not in known:
        print(f"cdrfetch: warning: profile {profile!r} is not in {where}; storing the secret anyway", file=sys.stderr)
        return
    section = known[profile].get(provider) if isinstance(known[profile], dict) else None
    names = accounts.names(section) if isinstance(section, dict) else []
    if account is not None and account not in names:
        close = suggest(account, names)
        missing = f"{provider} in profile {profile!r} of {where} has no account {account!r}{close}"
        print(f"cdrfetch: warning: {missing}; storing the secret anyway", file=sys.stderr)


def _read_secret(name: str, help_text: str) -> str:
    """A secret from a hidden prompt on a terminal, or one line of stdin otherwise."""
    value = getpass.getpass(f"{name} ({help_text}): ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise UsageError(f"empty value for {name}", "type the secret, or pipe it on stdin")
    return value


def run_show_config(
    provider: str,
    profile: str | None,
    config_file: str | None,
    overrides: list[str],
    sandbox: bool,
    as_json: bool,
    account: str | None = None,
) -> int:
    """`config`: every setting, its value (secrets masked) and its source."""
    cls = providers.load(provider)
    with sandbox_settings(provider, sandbox) as injected:
        resolved = resolve_settings(provider, profile, config_file, overrides, injected, account)
    rows = setting_rows(cls, resolved)
    if as_json:
        path = str(resolved.config_path) if resolved.config_path else None
        document = {"provider": provider, "profile": resolved.profile, "config_file": path, "settings": rows}
        print(json.dumps(document, indent=2, default=str))
    else:
        _print_table(provider, resolved, rows)
    resolved.require_complete()  # after the table: the one error line names the first missing setting
    return 0


def _print_table(provider: str, resolved: config.Resolved, rows: list[dict[str, Any]]) -> None:
    title = f"{provider} — profile {resolved.profile} — {resolved.config_path or 'no config file'}"
    cells = [(r["setting"], "" if r["value"] is None else str(r["value"]), r["source"]) for r in rows]
    if not sys.stdout.isatty():  # scripts get plain aligned text with full values
        header = ("setting", "value", "source")
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(2)]
        print(title)
        for row in [header, *cells]:
            print(f"{row[0]:{widths[0]}}  {row[1]:{widths[1]}}  {row[2]}".rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for cell in cells:
        table.add_row(*cell)
    Console(soft_wrap=True).print(table)


def run_sandbox_serve(provider: str, port: int, pairs: list[str], list_knobs: bool) -> int:
    """`sandbox serve`: run an emulator until interrupted, printing the profile to use."""
    import yaml

    from cdrfetch import sandbox

    providers.require(provider)
    if list_knobs:
        for name, default, help_text in sandbox.knob_table(provider):
            print(f"{name:24} {json.dumps(default, default=str):16} {help_text}")
        return 0
    server = sandbox.serve(provider, sandbox.parse_knobs(pairs), port=port)
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


def run_config_init(names: list[str], config_file: str | None, force: bool) -> int:
    """`config init`: a commented starter config (mode 0600) where cdrfetch looks for it."""
    known = providers.names()
    for name in names:
        providers.require(name)
    path, _named = config.config_path(config_file)
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", "add --force to replace it")
    text = starter_config(names or known)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, text.encode("utf-8"))  # mkstemp: mode 0600 from the start
    print(f"wrote {path}: fill in the empty settings, then store the secrets with `login`", file=sys.stderr)
    return 0


def starter_config(names: list[str]) -> str:
    """The starter file: per provider, required settings to fill in and every default, commented."""
    lines = [
        "# cdrfetch configuration, written by `cdrfetch config init`. Keep it private: chmod 600.",
        "# Secrets never belong here: `cdrfetch <provider> login` stores them in the OS keyring, or set",
        "# CDRFETCH_<PROVIDER>_<KEY> or CDRFETCH_<PROVIDER>_<KEY>_FILE (a file holding the value).",
        "# Empty settings are required; commented ones show their default: uncomment to change them.",
        "",
        "profiles:",
        "  default:",
    ]
    for name in names:
        lines.append(f"    {name}:")
        for setting in providers.load(name).all_settings():
            lines.append("      " + _setting_line(name, setting))
    return "\n".join(lines) + "\n"


def _setting_line(provider: str, setting: Setting) -> str:
    """One setting of the starter file, with its help (and choices or range) as a comment."""
    about = setting.help
    if setting.choices:
        about += f"; one of {' | '.join(setting.choices)}"
    if setting.minimum is not None or setting.maximum is not None:
        about += f"; from {setting.minimum if setting.minimum is not None else '-inf'}"
        about += f" to {setting.maximum if setting.maximum is not None else 'inf'}"
    if setting.secret:
        variable = config.env_name(provider, setting.name)
        return f"# {setting.name}: secret -> `cdrfetch {provider} login`, or {variable} / {variable}_FILE"
    if setting.default is None:
        return f"{setting.name}:  # REQUIRED: {about}" if setting.is_required else f"# {setting.name}:  # {about}"
    return f"# {setting.name}: {json.dumps(setting.default)}  # {about}"


def run_runs(provider: str | None, limit: int, as_json: bool) -> int:
    """`runs`: the run ledger, newest first."""
    from cdrfetch import providers
    from cdrfetch.ledger import Ledger

    if provider is not None:
        providers.require(provider)
    rows = Ledger().runs(provider, limit)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    columns = ("id", "finished", "provider", "profile", "account", "window", "outcome", "records", "files", "checksum")
    lines = [_run_cells(row) for row in rows]
    if not sys.stdout.isatty():  # scripts get plain tab-separated lines, never truncated
        print("\t".join(columns))
        for cells in lines:
            print("\t".join(cells))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cdrfetch runs{' of ' + provider if provider else ''} (newest first)")
    for column in columns:  # times are what this table is for: never cut, wrap the rest instead
        table.add_column(column, no_wrap=column in ("finished", "window"), overflow="fold")
    for cells in lines:
        table.add_row(*cells)
    Console().print(table)
    return 0


def _run_cells(row: dict[str, Any]) -> list[str]:
    """One ledger row as display cells."""
    records = " ".join(f"{name}={count}" for name, count in row["records"].items()) or "0"
    outcome = f"{row['outcome']} ({row['exit_code']}, {row['duration_s']:.1f}s)"
    return [
        str(row["id"]), row["finished_at"], row["provider"], row["profile"], row["account"],
        f"{row['window_start']} -> {row['window_end']}", outcome, records, str(len(row["files"])),
        (row["checksum"] or "")[:12],
    ]  # fmt: skip


def run_maintain(destination: str, config_file: str | None, apply: bool, retention_hours: int) -> int:
    """`cdrfetch maintain DEST`: compact and vacuum a Delta destination (a dry run unless `apply`)."""
    from cdrfetch import destinations
    from cdrfetch.destinations.named import find

    named = find(destination, config_file)
    target = destinations.choose(destination, None if named else "delta", config_file=config_file)
    maintain = getattr(target, "maintain", None)
    if maintain is None:
        raise UsageError(f"{target.describe()} holds no Delta tables", "maintain compacts and vacuums Delta tables")
    for line in maintain(dry_run=not apply, retention_hours=retention_hours):
        print(line)
    if not apply:
        print("dry run: nothing changed (add --apply to do it)")
    return 0


def reset_state(ledger: Ledger, key: Key, yes: bool, log: logging.Logger, destination: Destination) -> None:
    """Forget the ledger of `key` after confirmation (never prompts without a terminal)."""
    if destination.keeps_state:
        raise UsageError(
            f"--reset-state forgets the local ledger, but {destination.describe()} keeps this account's state itself",
            "pull an explicit --from/--to window instead, or reset the state in the destination",
        )
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
