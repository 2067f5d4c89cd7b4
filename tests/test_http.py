"""The network boundary in one place: which URLs are fetched, where credentials may go, which redirects are followed."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
import requests
from requests.auth import HTTPBasicAuth

from cdrfetch import http
from cdrfetch.client import Client
from cdrfetch.errors import ConfigError, DataError, UnavailableError
from cdrfetch.providers.base import COMMON_SETTINGS
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Request, Route, SandboxServer
from cdrfetch.summary import RunSummary
from cdrfetch.windows import Window


class Hops(Emulator):
    """Answers /final, and redirects /hop/N to /hop/N+1 (and /loop to itself)."""

    name = "hops"

    def routes(self) -> list[Route]:
        return [
            Route("GET", re.compile(r"/final"), lambda request, match: Reply.text("arrived")),
            Route("POST", re.compile(r"/final"), lambda request, match: Reply.text(f"posted {request.body!r}")),
            Route("GET", re.compile(r"/hop/(\d+)"), self._hop),
            Route("POST", re.compile(r"/hop/(\d+)"), self._hop),
            Route("GET", re.compile(r"/loop"), lambda request, match: Reply(302, b"", {"Location": "/loop"})),
        ]

    def _hop(self, request: Request, match: re.Match[str]) -> Reply:
        step = int(match.group(1))
        return Reply(307, b"", {"Location": "/final" if step >= 2 else f"/hop/{step + 1}"})

    def profile(self, base_url: str) -> dict[str, object]:
        return {}

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        return []


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Hops()) as running:
        yield running


def client_for(base_url: str) -> Client:
    settings = {s.name: s.default for s in COMMON_SETTINGS} | {"base_url": base_url, "retries": 0}
    return Client(settings, log=logging.getLogger("cdrfetch.test"), summary=RunSummary("t", "a", "p", "", ""))


def test_redirects_within_the_origin_are_followed_keeping_a_307_post(server: SandboxServer) -> None:
    with client_for(server.url) as client:
        answer = client.send("POST", server.url + "/hop/0", what="hops", data=b"body", auth=HTTPBasicAuth("u", "p"))
    assert answer.text == "posted b'body'"
    assert [r.path for r in server.emulator.received] == ["/hop/0", "/hop/1", "/hop/2", "/final"]


def test_a_redirect_loop_is_unavailable(server: SandboxServer) -> None:
    with client_for(server.url) as client, pytest.raises(UnavailableError, match="more than 5 redirects"):
        client.send("GET", server.url + "/loop", what="loop")


def test_credentials_are_never_sent_outside_base_urls_origin(server: SandboxServer) -> None:
    other = server.url.replace("127.0.0.1", "localhost")  # same machine, another origin
    with client_for(other) as client, pytest.raises(ConfigError, match="refusing to send credentials"):
        client.send("GET", server.url + "/final", what="final", auth=HTTPBasicAuth("u", "p"))
    assert server.emulator.received == []


def redirect(status: int, location: str) -> requests.Response:
    response = requests.Response()
    response.status_code, response.headers["Location"] = status, location
    return response


@pytest.mark.parametrize(
    "location",
    ["http://api.example.com/v3/x", "https://api.example.com:8443/v3/x", "https://evil.example.net/v3/x"],
)
def test_a_redirect_to_another_scheme_host_or_port_is_refused(location: str) -> None:
    with pytest.raises(ConfigError, match=r"redirect from api\.example\.com to .*: refused"):
        http._redirect_target(redirect(302, location), "https://api.example.com/v3/page", "page")


def test_a_same_origin_redirect_resolves_relative_locations() -> None:
    target = http._redirect_target(redirect(302, "../v4/page?x=1"), "https://API.example.com:443/v3/page", "page")
    assert target == "https://API.example.com:443/v4/page?x=1"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:70/x", "ftp://example.com/f", "/relative/only", "http://h:port/"]
)
def test_only_absolute_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(DataError):
        http.check_url(url, "download")


def test_origins_compare_scheme_host_and_default_ports() -> None:
    assert http.origin("https://Example.com/a") == http.origin("https://example.com:443/b")
    assert http.origin("http://example.com/") != http.origin("https://example.com/")
    assert http.is_loopback("127.0.0.5") and http.is_loopback("::1") and http.is_loopback("localhost")
    assert not http.is_loopback("10.0.0.1")
