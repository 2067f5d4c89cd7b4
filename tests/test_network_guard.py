"""The suite itself cannot reach beyond loopback."""

from __future__ import annotations

import socket

import pytest

from cdrfetch.testing.fixtures import NonLoopbackConnection


def test_non_loopback_connections_fail_before_leaving_the_machine() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(NonLoopbackConnection):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed


def test_loopback_connections_are_allowed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
