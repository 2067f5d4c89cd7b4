"""Profiles (YAML), environment, secret files and the OS keyring -> resolved settings.

One resolver, one precedence, highest first:

    --set key=value (non-secret only) > env CDRFETCH_<PROVIDER>_<KEY> > env ..._<KEY>_FILE
    > profile YAML > OS keyring (secrets only) > default

Every resolved value remembers where it came from, so `cdrfetch <provider> config` can show it.
The config file is `--config PATH` > $CDRFETCH_CONFIG > <user config dir>/config.yaml, and the
profile is `--profile NAME` > $CDRFETCH_PROFILE > `default`. A file holds one mapping,
`profiles: {<profile>: {<provider>: {<setting>: value}}}` and `destinations: {<name>: {...}}`;
any other key is refused.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdrfetch import accounts
from cdrfetch.errors import ConfigError, UsageError, suggest
from cdrfetch.keystore import KeyringError
from cdrfetch.permissions import read_secret_file, refuse_readable_secret, refuse_writable_config
from cdrfetch.providers.base import Setting
from cdrfetch.values import check_consistent, convert

APP = "cdrfetch"
STARTER_HINT = "run `cdrfetch config init` for a commented starter file"
TOP_LEVEL = ("profiles", "destinations")


@dataclass(frozen=True)
class Value:
    """A resolved setting: the value and where it came from."""

    value: Any
    source: str
    secret: bool


@dataclass
class Resolved(Mapping[str, Any]):
    """The settings of one provider in one profile, each with its source."""

    provider: str
    profile: str
    config_path: Path | None
    entries: dict[str, Value] = field(default_factory=dict)
    missing: list[Setting] = field(default_factory=list)
    keyring_problem: str | None = None  # why the keyring could not be read, if it was needed
    account: str | None = None  # the name of the chosen entry of `accounts:`, if the section has them

    def __getitem__(self, name: str) -> Any:
        return self.entries[name].value if name in self.entries else None

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def source(self, name: str) -> str:
        """Where the value of `name` came from (`default` when unset)."""
        return self.entries[name].source if name in self.entries else "unset"

    def secret_values(self) -> list[str]:
        """Every secret value, for redaction."""
        return [str(v.value) for v in self.entries.values() if v.secret and v.value]

    def require_complete(self) -> None:
        """Raise ConfigError naming the first missing required setting and how to supply it."""
        if self.missing:
            setting = self.missing[0]
            message = f"{self.provider}: setting {setting.name!r} is not set (profile {self.profile!r})"
            if setting.secret and self.keyring_problem:
                message += f"; {self.keyring_problem}"
            raise ConfigError(message, how_to_supply(self.provider, setting, keyring=not self.keyring_problem))


def env_name(provider: str, key: str) -> str:
    """`huawei-cec`, `sk` -> `CDRFETCH_HUAWEI_CEC_SK`."""
    return f"CDRFETCH_{provider}_{key}".upper().replace("-", "_")


def keyring_user(profile: str, provider: str, key: str) -> str:
    """Keyring user name of one secret."""
    return f"{profile}/{provider}/{key}"


def how_to_supply(provider: str, setting: Setting, *, keyring: bool = True) -> str:
    """The hint for a missing setting (`keyring` False: the keyring is not usable here)."""
    env = env_name(provider, setting.name)
    if setting.secret and not keyring:
        return f"set {env} or {env}_FILE (the Docker/Kubernetes secret-file convention)"
    if setting.secret:
        return f"run `cdrfetch {provider} login`, or set {env} or {env}_FILE"
    return f"add `{setting.name}:` under `{provider}:` in the profile, or set {env}"


def config_path(explicit: str | None) -> tuple[Path, bool]:
    """The config file to read and whether the user named it explicitly."""
    named = explicit or os.environ.get("CDRFETCH_CONFIG")
    if named:
        return Path(named).expanduser(), True
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP)) / "config.yaml", False


def profile_choice(explicit: str | None) -> tuple[str, bool]:
    """The profile to read (`--profile`, else $CDRFETCH_PROFILE, else default) and whether it was named."""
    named = explicit or os.environ.get("CDRFETCH_PROFILE")
    return named or "default", bool(named)


def load_profile(
    path: Path, must_exist: bool, profile: str, profile_named: bool, provider: str | None = None
) -> dict[str, Any]:
    """The profile mapping (provider name -> settings) from the config file (`provider` counts as known)."""
    if not path.exists():
        if must_exist:
            raise ConfigError(f"config file {path} not found", "check --config / $CDRFETCH_CONFIG")
        return {}
    profiles = read_profiles(path, provider)
    if profile not in profiles:
        if profile_named:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"profile {profile!r} not found in {path}", f"known profiles: {known}")
        return {}
    section = profiles[profile] or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: profile {profile!r} must be a mapping", STARTER_HINT)
    return section


def read_profiles(path: Path, provider: str | None = None) -> dict[str, Any]:
    """Every profile of an existing config file, its keys checked (`provider` counts as known)."""
    profiles: dict[str, Any] = read_document(path, provider).get("profiles", {})
    return profiles


def read_document(path: Path, provider: str | None = None) -> dict[str, Any]:
    """The whole config file (`profiles:` and `destinations:`), its keys checked."""
    import yaml

    refuse_writable_config(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}", "point --config at a file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML", STARTER_HINT) from None
    profiles = document.get("profiles", {}) if isinstance(document, dict) else None
    if not isinstance(profiles, dict) or not isinstance(document.get("destinations", {}), dict):
        raise ConfigError(f"{path}: expected `profiles:` (and `destinations:`) mappings", STARTER_HINT)
    _refuse_unknown_keys(path, document, profiles, provider)
    return document


def _refuse_unknown_keys(path: Path, document: dict[str, Any], profiles: dict[str, Any], also: str | None) -> None:
    """A typo in a top-level key or a provider section is refused, before any setting is looked at."""
    from cdrfetch import providers

    for key in document:
        if key not in TOP_LEVEL:
            hint = suggest(str(key), TOP_LEVEL)
            raise ConfigError(f"{path}: unknown top-level key {key!r}{hint}", STARTER_HINT)
    known = sorted({*providers.names(), *([also] if also else [])})
    for name, section in profiles.items():
        for provider in section if isinstance(section, dict) else ():
            if provider not in known:
                raise ConfigError(
                    f"{path}: unknown provider {provider!r}{suggest(str(provider), known)} in profile {name!r}",
                    f"known providers: {', '.join(known)}",
                )


def parse_overrides(pairs: list[str], settings: tuple[Setting, ...]) -> dict[str, str]:
    """`--set key=value` pairs -> dict, refusing secrets (they would land in shell history)."""
    by_name = {s.name: s for s in settings}
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in by_name:
            raise UsageError(
                f"--set {key!r}: unknown setting{suggest(key, by_name)}", f"known: {', '.join(sorted(by_name))}"
            )
        if by_name[key].secret:
            raise UsageError(
                f"--set {key}: secrets are never accepted on the command line",
                "use `login`, the environment variable or its _FILE variant",
            )
        overrides[key] = value
    return overrides


def resolve(
    provider: str,
    settings: tuple[Setting, ...],
    *,
    config: str | None = None,
    profile: str | None = None,
    overrides: Mapping[str, str] | None = None,
    injected: Mapping[str, Any] | None = None,
    keyring_lookup: bool = True,
    account: str | None = None,
) -> Resolved:
    """Resolve every setting of `provider` with its source (see the module docstring).

    `injected` values (sandbox mode) outrank everything but `--set`. `account` picks one of the
    section's `accounts:` (see cdrfetch.accounts).
    """
    path, path_named = config_path(config)
    profile_name, named = profile_choice(profile)
    section = load_profile(path, path_named, profile_name, named, provider)
    own = section.get(provider) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{path}: `{provider}` must be a mapping", STARTER_HINT)
    own, account = accounts.select(path, provider, profile_name, own, account)
    scopes: list[tuple[str, Container[str]]] = [(provider, ())]
    if account:  # the account's own variables first; provider-wide ones never override its own YAML
        scopes = [(f"{provider}/{account}", ()), (provider, accounts.own_keys(section[provider], account))]
    unknown = sorted(set(own) - {s.name for s in settings})
    if unknown:
        names = sorted(s.name for s in settings)
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r} for {provider}{suggest(str(unknown[0]), names)}",
            f"known: {', '.join(names)}",
        )
    resolved = Resolved(provider, profile_name, path if path.exists() else None, account=account)
    for setting in settings:
        try:
            found = _lookup(setting, scopes, profile_name, path, own, overrides or {}, injected or {}, keyring_lookup)
        except KeyringError as error:  # only the last place a secret is looked for: it is simply not set
            resolved.keyring_problem, found = error.message, None
        if found is None:
            if setting.is_required:
                resolved.missing.append(setting)
            continue
        raw, source = found
        resolved.entries[setting.name] = Value(convert(setting, raw, source), source, setting.secret)
    check_consistent(resolved)
    return resolved


def _lookup(
    setting: Setting,
    scopes: list[tuple[str, Container[str]]],
    profile: str,
    path: Path,
    own: Mapping[str, Any],
    overrides: Mapping[str, str],
    injected: Mapping[str, Any],
    keyring_lookup: bool,
) -> tuple[Any, str] | None:
    """The raw value of one setting and its source, by precedence; None when unset.

    `scopes` are `<provider>/<account>` (when an account is chosen) then `<provider>`, each with the
    names its variables may not set: an account's own variable or keyring entry comes before the
    provider's shared one, and a provider-wide variable never overrides the account's own YAML.
    """
    name = setting.name
    if name in overrides:
        return overrides[name], "--set"
    if name in injected:
        return injected[name], "sandbox"
    for scope, shadowed in scopes:
        if name in shadowed:
            continue
        variable = env_name(scope.replace("/", "_"), name)
        if os.environ.get(variable):
            return os.environ[variable], f"env {variable}"
        if os.environ.get(variable + "_FILE"):
            secret = name if setting.secret else None
            return read_secret_file(os.environ[variable + "_FILE"], variable + "_FILE", secret), f"env {variable}_FILE"
    if own.get(name) is not None:
        if setting.secret:
            refuse_readable_secret(path, name)
        return own[name], f"profile {profile} ({path})"
    if setting.secret and keyring_lookup:
        from cdrfetch import keystore

        for scope, _ in scopes:
            stored = keystore.get(keyring_user(profile, scope, name))
            if stored is not None:
                return stored, "keyring"
    if setting.default is not None:
        return setting.default, "default"
    return None
