"""`cdrfetch doctor` and `cdrfetch <provider> check`: is this machine ready to run unattended?

One line per check. Checks run in order and stop at the first one whose failure makes the rest
meaningless (no settings -> no request). The exit code is that of the first failure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from datetime import timezone
from email.utils import parsedate_to_datetime

from cdrfetch import accounts, config, keystore, logs, providers
from cdrfetch.client import Client, utc_now
from cdrfetch.commands import resolve_settings, sandbox_settings
from cdrfetch.errors import CdrfetchError, ConfigError, ExitCode
from cdrfetch.providers.base import Provider
from cdrfetch.summary import RunSummary

MAX_SKEW_S = 300.0  # signed protocols reject timestamps a few minutes off


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ok, warn, skip or fail (with the exit code it implies)."""

    subject: str
    status: str
    detail: str
    hint: str | None = None
    code: ExitCode = ExitCode.OK

    def line(self) -> str:
        text = f"{self.status.upper():4}  {self.subject:12}  {self.detail}"
        return text + (f"\n      hint: {self.hint}" if self.hint else "")


def failed(subject: str, error: CdrfetchError) -> Check:
    return Check(subject, "fail", error.message, error.hint, error.exit_code)


def check_config(config_file: str | None, profile: str | None) -> Iterator[Check]:
    """The config file and the profile."""
    path, named = config.config_path(config_file)
    if not path.exists():
        if named:
            yield Check("config", "fail", f"{path} not found", "check --config / $CDRFETCH_CONFIG", ExitCode.CONFIG)
        else:
            yield Check("config", "warn", f"no config file at {path}", "settings must then come from the environment")
        return
    try:
        name = profile or "default"
        section = config.load_profile(path, named, name, profile is not None)
    except ConfigError as error:
        yield failed("config", error)
        return
    yield Check("config", "ok", f"{path} parsed")
    yield Check("profile", "ok", f"{name}: {', '.join(sorted(section)) or 'no provider sections'}")


def check_keyring() -> Check:
    """Whether secrets can be read from the OS keyring here."""
    problem = keystore.backend_problem()
    if problem:
        return Check("keyring", "warn", problem, keystore.HEADLESS_HINT)
    plain = keystore.plaintext_backend()
    if plain:
        return Check("keyring", "warn", f"backend {plain} stores secrets unencrypted", "prefer an encrypted backend")
    import keyring

    return Check("keyring", "ok", f"backend {type(keyring.get_keyring()).__name__}")


def check_provider(
    name: str, profile: str | None, config_file: str | None, sandbox: bool, account: str | None = None
) -> Iterator[Check]:
    """Settings, TLS and clock, credentials of one provider (one of its `accounts:`)."""
    cls = providers.load(name)
    with sandbox_settings(name, sandbox) as injected:
        try:
            settings = resolve_settings(name, profile, config_file, [], injected, account)
            settings.require_complete()
        except CdrfetchError as error:
            yield failed(f"{name}", error)
            return
        sources = ", ".join(
            f"{s.name} ({settings.source(s.name)})" for s in cls.settings if settings[s.name] is not None
        )
        yield Check(name, "ok", f"settings resolved: {sources}")
        summary = RunSummary(name, cls.account_of(settings), settings.profile, "", "")
        with Client(settings, log=logging.getLogger(f"{logs.ROOT}.{name}"), summary=summary) as client:
            reached = yield from _reach(name, client, str(settings["base_url"]))
            if reached:
                yield _credentials(name, cls(settings, client))


def _reach(name: str, client: Client, base_url: str) -> Generator[Check, None, bool]:
    """TLS (and the network) to base_url, and the clock against the server's Date header."""
    try:
        response = client.send("GET", base_url, what=f"{name} base_url", allow_redirects=False)
    except CdrfetchError as error:
        if error.http_status is None:  # a 5xx still proves TLS and the route work
            yield failed(f"{name} reach", error)
            return False
        response = None
    scheme = base_url.split(":", 1)[0]
    yield Check(f"{name} reach", "ok", f"{base_url} answers" + (" (TLS verified)" if scheme == "https" else ""))
    yield _clock(name, response.headers.get("Date") if response is not None else None)
    return True


def _clock(name: str, date_header: str | None) -> Check:
    if not date_header:
        return Check(f"{name} clock", "skip", "the server sent no Date header")
    try:
        skew = (parsedate_to_datetime(date_header).astimezone(timezone.utc) - utc_now()).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):  # a server's garbage is not our failure
        return Check(f"{name} clock", "skip", "the server's Date header is unreadable")
    if abs(skew) > MAX_SKEW_S:
        return Check(
            f"{name} clock",
            "fail",
            f"local clock is {-skew:+.0f}s off the server",
            "sync the clock (NTP)",
            ExitCode.CONFIG,
        )
    return Check(f"{name} clock", "ok", f"skew {-skew:+.0f}s against the server")


def _credentials(name: str, provider: Provider) -> Check:
    try:
        return Check(f"{name} login", "ok", provider.check())
    except NotImplementedError:
        return Check(f"{name} login", "skip", "no cheap credential check for this protocol")
    except CdrfetchError as error:
        return failed(f"{name} login", error)


def configured_providers(config_file: str | None, profile: str | None) -> list[str]:
    """Providers with a section in the profile or a CDRFETCH_<PROVIDER>_* environment variable."""
    path, named = config.config_path(config_file)
    try:
        section = config.load_profile(path, named, config.profile_choice(profile)[0], profile is not None)
    except ConfigError:
        section = {}
    prefixes = {name: config.env_name(name, "") for name in providers.names()}
    return [
        name
        for name, prefix in prefixes.items()
        if name in section or any(variable.startswith(prefix) for variable in os.environ)
    ]


def configured_accounts(provider: str, config_file: str | None, profile: str | None) -> list[str | None]:
    """The provider section's `accounts:` ([None]: the section is one account)."""
    path, named = config.config_path(config_file)
    try:
        section = config.load_profile(path, named, config.profile_choice(profile)[0], profile is not None)
    except ConfigError:
        return [None]
    own = section.get(provider)
    names: list[str | None] = list(accounts.names(own)) if isinstance(own, dict) else []
    return names or [None]


def run_checks(provider: str | None, profile: str | None, config_file: str | None, sandbox: bool) -> int:
    """Print one line per check (one provider, or every configured one) and return the exit code."""
    checks: list[Check] = []

    def report(check: Check) -> None:
        checks.append(check)
        print(check.line(), flush=True)

    if not sandbox:
        for check in check_config(config_file, profile):
            report(check)
    report(check_keyring())
    names = [provider] if provider else providers.names() if sandbox else configured_providers(config_file, profile)
    if not names:
        report(
            Check(
                "providers",
                "fail",
                "no provider is configured",
                "add a provider section to the profile (`cdrfetch config init` writes one)",
                ExitCode.CONFIG,
            )
        )
    for name in names:
        for account in [None] if sandbox else configured_accounts(name, config_file, profile):
            for check in check_provider(name, profile, config_file, sandbox, account):
                report(check if account is None else replace(check, subject=f"{account}: {check.subject}"))
    if provider is None and not sandbox:
        for check in check_destinations(config_file):
            report(check)
    return exit_code(checks)


def check_destinations(config_file: str | None) -> Iterator[Check]:
    """Each named destination: its library installed, reachable, writable, existing tables compatible."""
    from cdrfetch import destinations
    from cdrfetch.destinations.named import all_named

    try:
        named = all_named(config_file)
    except CdrfetchError as error:
        yield failed("destinations", error)
        return
    tables = {
        table: schema for name in providers.names() for table, schema in providers.load(name).output_tables().items()
    }
    for name in named:
        try:
            yield Check(f"to {name}", "ok", destinations.choose(name, None, config_file=config_file).check(tables))
        except CdrfetchError as error:
            yield failed(f"to {name}", error)


def exit_code(checks: list[Check]) -> int:
    """The code of the first failure, else 0."""
    return next((int(c.code) for c in checks if c.status == "fail"), 0)
