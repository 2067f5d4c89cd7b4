"""The core services over real loopback HTTP, against a tiny emulator defined here."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cdrfetch.client import Client
from cdrfetch.errors import AuthError, ConfigError, TemporaryError, UnavailableError
from cdrfetch.providers.base import COMMON_SETTINGS
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route, SandboxServer
from cdrfetch.summary import RunSummary
from cdrfetch.windows import Window

PAYLOAD = bytes(range(256)) * 400


class Echo(Emulator):
    name = "echo"

    def routes(self) -> list[Route]:
        return [
            Route("GET", re.compile(r"/ok"), lambda req, m: Reply.text("fine")),
            Route("GET", re.compile(r"/file"), self.file),
            Route("GET", re.compile(r"/denied"), lambda req, m: Reply.text("no", 403)),
        ]

    truncate = 0

    def file(self, request: Request, match: re.Match[str]) -> Reply:
        reply = Reply(200, PAYLOAD, {"Content-Type": "application/octet-stream", "Content-Encoding": "gzip"})
        if self.truncate:
            self.truncate -= 1
            reply.truncate = True
        return reply

    def profile(self, base_url: str) -> dict[str, Any]:
        return {}

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        return []


SETTINGS = {s.name: s.default for s in COMMON_SETTINGS} | {
    "timeout": 5, "retries": 3, "backoff": 0.5, "poll_interval": 1, "poll_timeout": 10,
}  # fmt: skip


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Echo()) as running:
        yield running


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(slept: list[float]) -> Iterator[Client]:
    summary = RunSummary("echo", "a", "default", "", "")
    with Client(SETTINGS, log=logging.getLogger("cdrfetch.test"), summary=summary, sleep=slept.append) as made:
        yield made


def get(client: Client, url: str) -> requests.Response:
    """One GET through the core's retry loop, as providers send their requests."""
    return client.retry(lambda: client.send("GET", url, what="ok"), what="ok")


def test_5xx_is_retried_with_growing_jittered_backoff(
    server: SandboxServer, client: Client, slept: list[float]
) -> None:
    server.emulator.faults.fail_next(3, 502, "/ok")
    assert get(client, server.url + "/ok").text == "fine"
    assert len(slept) == 3 and client.summary.retries == 3
    for attempt, delay in enumerate(slept):
        assert 0.5 * 0.5 * 2**attempt <= delay <= 0.5 * 1.5 * 2**attempt


def test_retry_after_is_honoured(server: SandboxServer, client: Client, slept: list[float]) -> None:
    server.emulator.faults.throttle_next(1, retry_after=7, route="/ok")
    get(client, server.url + "/ok")
    assert slept == [7.0]


def test_budget_exhausted_keeps_the_error_class(server: SandboxServer, client: Client) -> None:
    server.emulator.faults.fail_next(10, 500, "/ok")
    with pytest.raises(UnavailableError, match="gave up after 4 attempts"):
        get(client, server.url + "/ok")
    server.emulator.faults.throttle_next(10, 1, "/ok")
    server.emulator.faults.fail.clear()
    with pytest.raises(TemporaryError):
        get(client, server.url + "/ok")


def test_connection_refused_after_retries_is_unavailable(client: Client) -> None:
    with pytest.raises(UnavailableError, match="cannot connect"):
        get(client, "http://127.0.0.1:9/ok")


def test_download_is_byte_exact_and_retries_truncation(server: SandboxServer, client: Client) -> None:
    server.emulator.truncate = 1  # type: ignore[attr-defined]
    path = client.download(server.url + "/file", what="file")
    assert path.read_bytes() == PAYLOAD  # Content-Encoding is not undone: digests see the bytes as sent
    assert path.parent == client.workdir
    assert sum(r.path == "/file" for r in server.emulator.received) == 2


def test_download_statuses_map_to_errors(server: SandboxServer, client: Client) -> None:
    with pytest.raises(AuthError) as caught:
        client.download(server.url + "/denied", what="file", hints={403: "token expired"})
    assert caught.value.http_status == 403 and caught.value.hint == "token expired"
    with pytest.raises(ConfigError, match="404"):
        client.download(server.url + "/nothing-here", what="file")


def test_poll_backs_off_then_times_out_with_the_hint(client: Client, slept: list[float]) -> None:
    answers = iter([None, None, "ready"])
    assert client.poll(lambda: next(answers), what="job", timeout_hint="resume with job 7") == "ready"
    assert slept == [1, 1.5]
    with pytest.raises(TemporaryError) as caught:
        client.poll(lambda: None, what="job", timeout_hint="resume with job 7")
    assert caught.value.hint == "resume with job 7"


def test_workdir_is_removed_on_exit(server: SandboxServer) -> None:
    with Client(SETTINGS, log=logging.getLogger("t"), summary=RunSummary("e", "a", "d", "", "")) as made:
        path = made.download(server.url + "/file", what="file")
    assert not path.exists()
