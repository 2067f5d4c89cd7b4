"""The Youlianyun sandbox behind a real profile, for tests that drive `pull` through the CLI.

Loaded as a plugin by conftest.py: `server` and `profile` (one account), `fleet_server` and
`fleet_config` (two accounts, acme and globex, in one profile) are fixtures every test module may use
(a module's own fixture of the same name takes precedence)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing.harness import MemoryKeyring, run_cli, write_profile

PROVIDER = "youlianyun"


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(emulator_class(PROVIDER)()) as running:
        yield running


@pytest.fixture
def profile(server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring) -> Path:
    return write_profile(PROVIDER, server.emulator.profile(server.url), tmp_path / "config.yaml", memory_keyring)


def pull(profile: Path, *args: str) -> Any:
    return run_cli(PROVIDER, "pull", "--config", str(profile), *args)


def account(name: str) -> tuple[str, str, str]:
    """A deterministic (sid, token, app id) for an account name."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return digest[:32], digest[32:64], hashlib.md5(name.encode()).hexdigest()


@pytest.fixture
def fleet_server() -> Iterator[SandboxServer]:
    names = ("acme", "globex")
    emulator = emulator_class("youlianyun")(
        accounts={account(n)[0]: account(n)[1] for n in names}, apps={account(n)[2]: account(n)[0] for n in names}
    )
    with SandboxServer(emulator) as running:
        yield running


@pytest.fixture
def fleet_config(
    fleet_server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """acme's token in its own env variable, globex's in the keyring under its own user."""
    base = fleet_server.emulator.profile(fleet_server.url)
    monkeypatch.setenv("CDRFETCH_YOULIANYUN_ACME_AUTH_TOKEN", account("acme")[1])
    memory_keyring.set_password("cdrfetch", "default/youlianyun/globex/auth_token", account("globex")[1])
    section = {
        "base_url": base["base_url"], "retries": 0,
        "accounts": {n: {"account_sid": account(n)[0], "app_id": account(n)[2]} for n in ("acme", "globex")},
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"profiles": {"default": {"youlianyun": section}}}))
    path.chmod(0o600)
    return path
