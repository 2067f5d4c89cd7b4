"""pytest fixtures for provider tests: loopback-only network, private config and data dirs, an in-memory keyring.

Use them with `pytest_plugins = ["cdrfetch.testing.fixtures"]` in your conftest.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest

from cdrfetch.http import is_loopback
from cdrfetch.testing.harness import MemoryKeyring


class NonLoopbackConnection(AssertionError):
    """A test tried to reach the network beyond 127.0.0.1."""


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if not is_loopback(host):
            raise NonLoopbackConnection(f"tests may only connect to loopback, not {host}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[None]:
    """Fail any connection that is not to a loopback address."""
    socket.socket.connect = _loopback_only  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """No CDRFETCH_* or proxy variables from the caller; private config and data dirs; fresh keyring."""
    for name in list(os.environ):
        if name.startswith("CDRFETCH_") or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    backend = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(isolated_env: MemoryKeyring) -> MemoryKeyring:
    """The in-memory keyring installed for this test."""
    return isolated_env
