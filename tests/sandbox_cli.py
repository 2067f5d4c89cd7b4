"""The Youlianyun sandbox behind a real profile, for tests that drive `pull` through the CLI.

Loaded as a plugin by conftest.py: `server` and `profile` are fixtures every test module may use
(a module's own fixture of the same name takes precedence)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
