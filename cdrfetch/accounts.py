"""Several accounts of one provider in one profile: the `accounts:` mapping of a provider section.

    profiles:
      default:
        youlianyun:
          base_url: https://api.youlianyun.com/2014-06-30   # shared by every account below
          accounts:
            acme:   {account_sid: 1784fd62..., app_id: 950a97bc...}
            globex: {account_sid: 9b1c0d2e..., app_id: 13f0a2d4...}

An account's own keys override the shared ones. Its secrets are its own: env
CDRFETCH_<PROVIDER>_<ACCOUNT>_<KEY> (or _FILE), or the keyring user <profile>/<provider>/<account>/<key>.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdrfetch.errors import ConfigError, UsageError, suggest

KEY = "accounts"


def names(section: dict[str, Any]) -> list[str]:
    """The account names of a provider section (empty: the section is one account)."""
    accounts = section.get(KEY)
    return sorted(str(name) for name in accounts) if isinstance(accounts, dict) else []


def select(
    path: Path, provider: str, profile: str, section: dict[str, Any], account: str | None
) -> tuple[dict[str, Any], str | None]:
    """The settings of `account` (the section's shared keys overridden by the account's own) and its
    name; a section with one account selects it, one without `accounts:` is itself the account (None)."""
    accounts = section.get(KEY)
    if isinstance(accounts, dict):
        accounts = {str(name): value for name, value in accounts.items()}  # YAML reads `10001:` as a number
    if accounts is None:
        if account is not None:
            raise ConfigError(
                f"{path}: {provider} in profile {profile!r} has no `accounts:`, so no account {account!r}",
                "drop --account, or list the accounts under `accounts:`",
            )
        return section, None
    if not isinstance(accounts, dict) or not accounts:
        raise ConfigError(f"{path}: `accounts:` of {provider} must map names to settings", "see the README")
    known = names(section)
    if account is None:
        if len(known) > 1:
            raise UsageError(
                f"{provider} has {len(known)} accounts in profile {profile!r}: {', '.join(known)}",
                "pick one with --account NAME, or pull them all with `cdrfetch pull --all`",
            )
        account = known[0]
    if account not in accounts:
        raise ConfigError(
            f"{path}: no account {account!r} for {provider} in profile {profile!r}{suggest(account, known)}",
            f"known: {', '.join(known)}",
        )
    own = accounts[account] or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{path}: account {account!r} of {provider} must be a mapping", "see the README")
    return {**{k: v for k, v in section.items() if k != KEY}, **own}, account


def own_keys(section: Any, account: str) -> set[str]:
    """The keys the account's own entry sets (not inherited from the shared section)."""
    entries = section.get(KEY) if isinstance(section, dict) else None
    own = {str(k): v for k, v in entries.items()}.get(account) if isinstance(entries, dict) else None
    return set(own) if isinstance(own, dict) else set()
