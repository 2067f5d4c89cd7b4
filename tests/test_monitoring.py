"""Monitoring of unattended pulls: the Prometheus textfile metrics and healthchecks-style pings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdrfetch.errors import ExitCode
from cdrfetch.monitoring import METRICS, read_samples
from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import Emulator, ExpectedCall, Reply, Route, SandboxServer
from cdrfetch.testing.harness import MemoryKeyring, run_cli, write_profile
from cdrfetch.windows import Window

PROVIDER = "youlianyun"
SID = "1784fd62ae354a1eca54f8b34e5a9baf"
# the text exposition format: name, optional {label="value",...}, a value (and no timestamp here)
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{{{LABEL}(,{LABEL})*\}})? [-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|[-+]?Inf)$"
)
LABELS = f'provider="{PROVIDER}",profile="default",account="{SID}"'


class HealthChecks(Emulator):
    """A ping endpoint: answers every GET and POST with 200 and keeps what it received."""

    name = "pings"

    def routes(self) -> list[Route]:
        ok = lambda request, match: Reply.text("OK")  # noqa: E731
        return [Route("POST", re.compile(r"/.*"), ok), Route("GET", re.compile(r"/.*"), ok)]

    def profile(self, base_url: str) -> dict[str, Any]:
        return {}

    def expected_calls(self, window: Window) -> list[ExpectedCall]:
        return []


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(emulator_class(PROVIDER)()) as running:
        yield running


@pytest.fixture
def pings() -> Iterator[SandboxServer]:
    with SandboxServer(HealthChecks()) as running:
        yield running


@pytest.fixture
def profile(server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring) -> Path:
    return write_profile(PROVIDER, server.emulator.profile(server.url), tmp_path / "config.yaml", memory_keyring)


def pull(profile: Path, tmp_path: Path, *args: str) -> Any:
    return run_cli(PROVIDER, "pull", "--config", str(profile), "--date", "2024-03-05", "-o", f"{tmp_path}/", *args)


def break_credentials(keyring_backend: MemoryKeyring) -> None:
    for key in list(keyring_backend.store):
        keyring_backend.store[key] = "not-the-token"


def value(path: Path, name: str, labels: str = LABELS) -> float:
    [line] = [line for line in path.read_text().splitlines() if line.startswith(f"{name}{{{labels}}} ")]
    return float(line.rsplit(" ", 1)[1])


def test_the_metrics_file_is_in_the_exposition_format(profile: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "cdrfetch.prom"
    result = pull(profile, tmp_path, "--metrics-file", str(metrics))
    assert result.exit_code == 0, result.stderr
    lines = metrics.read_text().splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    assert samples and all(SAMPLE.match(line) for line in samples), samples
    for name, (kind, _) in METRICS.items():
        assert f"# TYPE {name} {kind}" in lines and any(line.startswith(f"# HELP {name} ") for line in lines)
        assert any(line.startswith(f"{name}{{{LABELS}") for line in samples), name
    assert value(metrics, "cdrfetch_records", LABELS + ',table="calls"') > 0
    assert value(metrics, "cdrfetch_exit_code") == 0 and value(metrics, "cdrfetch_retries_total") == 0
    assert value(metrics, "cdrfetch_last_success_timestamp_seconds") == value(
        metrics, "cdrfetch_last_run_timestamp_seconds"
    )
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".cdrfetch.prom")]  # atomic


def test_a_failure_keeps_the_last_success_and_counts_retries(
    server: SandboxServer, profile: Path, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    metrics = tmp_path / "cdrfetch.prom"
    server.emulator.faults.fail_next(1, 503, "billList")
    assert pull(profile, tmp_path, "--metrics-file", str(metrics)).exit_code == 0
    succeeded = value(metrics, "cdrfetch_last_success_timestamp_seconds")
    assert value(metrics, "cdrfetch_retries_total") == 1
    break_credentials(memory_keyring)
    server.emulator.faults.fail_next(1, 503, "billList")
    assert pull(profile, tmp_path, "--metrics-file", str(metrics)).exit_code == ExitCode.AUTH
    assert value(metrics, "cdrfetch_exit_code") == ExitCode.AUTH
    assert value(metrics, "cdrfetch_last_success_timestamp_seconds") == succeeded
    assert value(metrics, "cdrfetch_last_run_timestamp_seconds") >= succeeded
    assert value(metrics, "cdrfetch_retries_total") == 2  # a counter over the runs


def test_a_run_failing_before_its_settings_stays_on_the_same_series(profile: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "cdrfetch.prom"
    assert pull(profile, tmp_path, "--metrics-file", str(metrics)).exit_code == 0
    succeeded = value(metrics, "cdrfetch_last_success_timestamp_seconds")
    failed = pull(profile, tmp_path, "--metrics-file", str(metrics), "--set", "nope=1")
    assert failed.exit_code == ExitCode.USAGE
    assert value(metrics, "cdrfetch_exit_code") == ExitCode.USAGE
    assert value(metrics, "cdrfetch_last_success_timestamp_seconds") == succeeded
    assert len(read_samples(metrics)) == len(METRICS)  # one series each, not a second account


def test_a_first_run_that_fails_reports_no_success(tmp_path: Path) -> None:
    metrics = tmp_path / "m.prom"
    result = run_cli(PROVIDER, "pull", "--date", "nope", "--metrics-file", str(metrics))
    assert result.exit_code == ExitCode.USAGE
    labels = f'provider="{PROVIDER}",profile="default",account=""'
    assert value(metrics, "cdrfetch_last_success_timestamp_seconds", labels) == 0
    assert value(metrics, "cdrfetch_exit_code", labels) == ExitCode.USAGE


def test_pings_start_then_success_or_exit_code(
    server: SandboxServer, pings: SandboxServer, profile: Path, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    url = f"{pings.url}/ping/0b3c5e"
    assert pull(profile, tmp_path, "--ping-url", url).exit_code == 0
    assert [r.path for r in pings.emulator.received] == ["/ping/0b3c5e/start", "/ping/0b3c5e"]
    assert b"exit 0" in pings.emulator.received[-1].body
    token = server.emulator.profile(server.url)["auth_token"]
    break_credentials(memory_keyring)
    assert pull(profile, tmp_path, "--ping-url", url).exit_code == ExitCode.AUTH
    assert [r.path for r in pings.emulator.received[2:]] == ["/ping/0b3c5e/start", "/ping/0b3c5e/77"]
    [failure] = [r for r in pings.emulator.received if r.path.endswith("/77")]
    assert failure.body.startswith(b"cdrfetch youlianyun pull exit 77: ") and b"\n" not in failure.body
    for request in pings.emulator.received:
        sent = f"{request.target} {request.headers} ".encode() + request.body
        assert token.encode() not in sent and b"not-the-token" not in sent


def test_the_ping_url_can_come_from_the_profile(
    server: SandboxServer, pings: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    settings = {**server.emulator.profile(server.url), "ping_url": f"{pings.url}/hc", "metrics_file": "m.prom"}
    profile = write_profile(PROVIDER, settings, tmp_path / "config.yaml", memory_keyring)
    assert yaml.safe_load(profile.read_text())["profiles"]["default"][PROVIDER]["ping_url"]
    other = tmp_path / "other.prom"
    assert pull(profile, tmp_path, "--metrics-file", str(other)).exit_code == 0  # the option wins
    assert [r.path for r in pings.emulator.received] == ["/hc/start", "/hc"]
    assert value(other, "cdrfetch_exit_code") == 0


def test_a_ping_server_that_is_down_does_not_change_the_exit_code(
    server: SandboxServer, profile: Path, tmp_path: Path
) -> None:
    with SandboxServer(HealthChecks()) as gone:
        url = gone.url
    result = pull(profile, tmp_path, "--ping-url", f"{url}/abc")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2 and all("ping to 127.0.0.1 failed" in line for line in warnings)
    assert "/abc" not in result.stderr  # the key part of a ping URL is never logged


def test_an_option_click_refuses_still_reports_the_failure(pings: SandboxServer, profile: Path, tmp_path: Path) -> None:
    """A typo in the cron line fails before any of cdrfetch's own code runs: the monitor must still hear of it."""
    import json

    metrics, summary = tmp_path / "cdrfetch.prom", tmp_path / "summary.json"
    assert pull(profile, tmp_path, "--metrics-file", str(metrics)).exit_code == 0
    summary.write_text('{"exit_code": 0}')  # the previous run's
    url = f"{pings.url}/ping/77aa"
    result = pull(profile, tmp_path, "--wait-lock", "soon", "--metrics-file", str(metrics),
                  "--summary-json", str(summary), f"--ping-url={url}", "--log-format", "json")  # fmt: skip
    assert result.exit_code == ExitCode.USAGE
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert "--wait-lock" in line["msg"] and line["exit_code"] == 2
    written = json.loads(summary.read_text())
    assert written["exit_code"] == 2 and "--wait-lock" in written["error"] and written["finished_at"]
    assert value(metrics, "cdrfetch_exit_code") == ExitCode.USAGE
    assert [r.path for r in pings.emulator.received] == ["/ping/77aa/start", "/ping/77aa/2"]
