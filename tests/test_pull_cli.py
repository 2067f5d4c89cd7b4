"""`pull` as a scheduler sees it: the summary file however the run ends, stderr lines, verbosity."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from cdrfetch.errors import ExitCode
from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing.harness import MemoryKeyring, run_cli, write_profile
from tests.sandbox_cli import PROVIDER, pull  # its `server` and `profile` fixtures come through conftest

EXCHANGE = re.compile(r"(GET|POST) http://127\.0\.0\.1:\d+/\S+ -> \d{3}, \d+ bytes, \d+ ms$")


def stale(path: Path) -> Path:
    """A summary left by an earlier, successful run: it must not survive a failing one."""
    path.write_text(json.dumps({"exit_code": 0, "error": None}), encoding="utf-8")
    return path


def check_times(data: dict[str, Any]) -> None:
    started, finished = (datetime.fromisoformat(data[k]) for k in ("started_at", "finished_at"))
    assert started.utcoffset() == finished.utcoffset() == timedelta(0)
    assert started <= finished <= datetime.now(timezone.utc) + timedelta(seconds=1)


def test_summary_on_a_usage_error_replaces_a_stale_one(tmp_path: Path) -> None:
    summary = stale(tmp_path / "s.json")
    result = run_cli(PROVIDER, "pull", "--date", "last-week", "--summary-json", str(summary))
    assert result.exit_code == ExitCode.USAGE, result.stderr
    data = json.loads(summary.read_text())
    assert data["exit_code"] == ExitCode.USAGE and "--date" in data["error"] and data["hint"]
    assert data["provider"] == PROVIDER and data["account"] == "" and data["window_start"] == ""
    check_times(data)


def test_summary_on_a_missing_secret(
    server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = server.emulator.profile(server.url)
    settings.pop("auth_token")
    profile = write_profile(PROVIDER, settings, tmp_path / "config.yaml", memory_keyring)
    summary = stale(tmp_path / "s.json")
    result = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"), "--summary-json", str(summary))
    assert result.exit_code == ExitCode.CONFIG, result.stderr
    data = json.loads(summary.read_text())
    assert data["exit_code"] == ExitCode.CONFIG and "auth_token" in data["error"]
    assert "CDRFETCH_YOULIANYUN_AUTH_TOKEN" in data["hint"] and data["profile"] == "default"
    check_times(data)


def test_summary_on_success_and_on_failure(
    server: SandboxServer, profile: Path, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    summary = tmp_path / "s.json"
    ok = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"), "--summary-json", str(summary))
    assert ok.exit_code == 0, ok.stderr
    data = json.loads(summary.read_text())
    assert data["exit_code"] == 0 and data["error"] is None and data["hint"] is None and data["records"]["calls"] > 0
    check_times(data)
    token = server.emulator.profile(server.url)["auth_token"]
    for key in list(memory_keyring.store):
        memory_keyring.store[key] = "wrong-token"
    failed = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "b.csv"), "--summary-json", str(summary))
    assert failed.exit_code == ExitCode.AUTH, failed.stderr
    text = summary.read_text()
    data = json.loads(text)
    assert data["exit_code"] == ExitCode.AUTH and data["error"] and data["hint"]
    assert data["window_start"] == "2024-03-04T16:00:00+00:00" and data["account"]
    assert "wrong-token" not in text and token not in text
    check_times(data)


def test_summary_to_stdout(profile: Path, tmp_path: Path) -> None:
    result = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"), "--summary-json", "-")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["exit_code"] == 0 and data["files"][0]["path"] == str(tmp_path / "a.csv")


def test_summary_to_stdout_beside_data_on_stdout_is_refused(profile: Path) -> None:
    result = pull(profile, "--date", "2024-03-05", "-o", "-", "--summary-json", "-")
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    [line, hint] = result.stderr.splitlines()
    assert "--summary-json" in line and hint.startswith("  hint:")


def test_json_logs_are_json_to_the_last_line_of_a_failing_run(server: SandboxServer, profile: Path) -> None:
    server.emulator.faults.fail_next(10, 503, "billList")
    result = pull(profile, "--date", "2024-03-05", "-o", "-", "--log-format", "json", "--set", "retries=1", "-vv")
    assert result.exit_code == ExitCode.UNAVAILABLE
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(lines) > 3 and all(isinstance(line, dict) for line in lines)
    last = lines[-1]
    assert last["level"] == "error" and "gave up after 2 attempts" in last["msg"] and last["hint"]
    assert last["exit_code"] == ExitCode.UNAVAILABLE
    assert any(line.get("status") == 503 and line.get("method") == "POST" for line in lines)  # -vv exchanges


def test_json_logs_on_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(PROVIDER, "pull", "--log-format", "json", "--from", "2024-01-02", "--to", "2024-01-01")
    assert result.exit_code == ExitCode.USAGE
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert "empty window" in line["msg"] and "--to must be later" in line["hint"] and line["exit_code"] == 2
    assert "--from 2024-01-02 is not before --to 2024-01-01" in line["msg"]  # as typed, not shifted to UTC


def test_a_failing_single_chunk_pull_says_so_once(server: SandboxServer, profile: Path) -> None:
    server.emulator.faults.fail_next(1, 503, "billList")
    result = pull(profile, "--date", "2024-03-05", "-o", "-", "--set", "retries=0")
    assert result.exit_code == ExitCode.UNAVAILABLE
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("cdrfetch: error:") and errors[0].endswith("(gave up after 1 attempt)")
    assert "chunk" not in result.stderr


def test_a_partial_run_names_each_failed_chunk_once(server: SandboxServer, profile: Path, tmp_path: Path) -> None:
    server.emulator.faults.fail_next(1, 503, "billList")  # the first of three days
    result = pull(profile, "--from", "2024-03-01", "--to", "2024-03-04", "-o", f"{tmp_path}/", "--set", "retries=0")
    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    [named] = [line for line in result.stderr.splitlines() if "2024-03-01" in line]
    assert named.startswith("cdrfetch: ERROR: chunk 2024-03-01 failed: ") and "HTTP 503" in named
    assert result.stderr.splitlines()[-2] == "cdrfetch: error: partial result: 1 of 3 chunks failed (named above)"


def test_every_chunk_failing_names_each_once(server: SandboxServer, profile: Path, tmp_path: Path) -> None:
    server.emulator.faults.fail_next(3, 503, "billList")
    result = pull(profile, "--from", "2024-03-01", "--to", "2024-03-04", "-o", f"{tmp_path}/", "--set", "retries=0")
    assert result.exit_code == ExitCode.UNAVAILABLE, result.stderr
    assert result.stderr.count("HTTP 503") == 3, result.stderr
    for day in ("2024-03-01", "2024-03-02"):
        assert result.stderr.count(f"chunk {day} failed") == 1
    assert result.stderr.splitlines()[-2].startswith("cdrfetch: error: youlianyun billList 2024-03-03")


def test_vv_logs_one_line_per_http_exchange_and_v_does_not(server: SandboxServer, profile: Path) -> None:
    token = server.emulator.profile(server.url)["auth_token"]
    debug = pull(profile, "--date", "2024-03-05", "-o", "-", "-vv")
    assert debug.exit_code == 0, debug.stderr
    exchanges = [line for line in debug.stderr.splitlines() if EXCHANGE.search(line)]
    assert len(exchanges) == len(server.emulator.received) >= 2
    assert all(line.startswith("cdrfetch: DEBUG: ") for line in exchanges)
    assert token not in debug.stderr and "token=***" in debug.stderr
    info = pull(profile, "--date", "2024-03-05", "-o", "-", "-v")
    assert info.exit_code == 0 and info.stderr
    assert not [line for line in info.stderr.splitlines() if EXCHANGE.search(line) or "DEBUG" in line]


def test_quiet_and_verbose_together_are_refused(tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    result = run_cli(PROVIDER, "pull", "-q", "-v", "--summary-json", str(summary))
    assert result.exit_code == ExitCode.USAGE
    [line, hint] = result.stderr.splitlines()
    assert line == "cdrfetch: error: -q and -v cannot be combined" and hint.startswith("  hint:")
    assert json.loads(summary.read_text())["exit_code"] == ExitCode.USAGE


def test_dry_run_shows_the_chunks_and_requests_nothing(tmp_path: Path) -> None:
    # every answer of this emulator is a 500: a single request would fail the run
    result = run_cli(PROVIDER, "pull", "--sandbox", "--knob", "fail_status=500", "--from", "2026-11-01",
                     "--to", "2026-11-04", "-o", f"{tmp_path}/out/", "--dry-run", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    chunks = lines[lines.index("3 chunk(s):") + 1 :][:3]
    assert [line.split()[0] for line in chunks] == ["2026-11-01:", "2026-11-02:", "2026-11-03:"]
    assert "+08:00" in result.stdout  # in the profile's zone
    assert any(line.strip().startswith("POST http://127.0.0.1:") and "/billList" in line for line in lines)
    assert "  auth_token = ********  (sandbox)" in lines  # settings shown, the secret masked
    sandbox = emulator_class(PROVIDER)().profile("http://127.0.0.1")
    assert sandbox["auth_token"] not in result.stdout + result.stderr
    planned = f"  calls: {tmp_path}/out/youlianyun/{sandbox['account_sid']}/2026-11-01_2026-11-04.parquet"
    assert planned in lines
    assert not (tmp_path / "out").exists()
    assert json.loads(run_cli("runs", "--json").stdout) == []


def test_reset_state_is_refused_where_the_destination_keeps_the_state(profile: Path, tmp_path: Path) -> None:
    pytest.importorskip("deltalake")
    result = pull(profile, "--since-last", "--reset-state", "--yes", "--format", "delta", "-o", str(tmp_path / "t"))
    assert result.exit_code == 2 and "keeps this account's state itself" in result.stderr
