"""Unattended operation against the Youlianyun emulator: ledger, --since-last, lock, summary, secrets."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from cdrfetch import locking, providers
from cdrfetch.errors import ExitCode
from cdrfetch.ledger import Key, Ledger
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing.harness import MemoryKeyring, read_table, run_cli, write_profile
from tests.sandbox_cli import PROVIDER, pull  # its `server` and `profile` fixtures come through conftest

SID = "1784fd62ae354a1eca54f8b34e5a9baf"


def test_since_last_resumes_and_never_duplicates(server: SandboxServer, profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "cdrs"
    first = pull(profile, "--since-last", "-o", f"{out}/")
    assert first.exit_code == 0, first.stderr
    [run] = Ledger().runs(PROVIDER)
    assert run["outcome"] == "ok" and run["complete_until"] is not None
    yesterday = datetime.fromisoformat(run["window_start"])
    assert datetime.fromisoformat(run["complete_until"]) == yesterday + timedelta(days=1)  # today is not complete yet
    second = pull(profile, "--since-last", "-o", f"{out}/", "--set", "lookback=6h")
    assert second.exit_code == 0, second.stderr
    newest = Ledger().runs(PROVIDER)[0]
    assert datetime.fromisoformat(newest["window_start"]) == yesterday + timedelta(hours=18)
    ids = [rid for path in sorted(out.rglob("*.parquet")) for rid in read_table(path).column("record_id").to_pylist()]
    assert len(ids) == len(set(ids)) == run["records"]["calls"] > 0  # the overlap was re-read, not re-written


def test_rerunning_a_window_gives_the_same_file(profile: Path, tmp_path: Path) -> None:
    target = tmp_path / "day.csv"
    assert pull(profile, "--date", "2024-03-05", "-o", str(target)).exit_code == 0
    first = target.read_bytes()
    assert pull(profile, "--date", "2024-03-05", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == first
    runs = json.loads(run_cli("runs", "--json").stdout)
    assert runs[0]["checksum"] == runs[1]["checksum"]


def test_runs_lists_window_records_files_and_outcome(profile: Path, tmp_path: Path) -> None:
    assert pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.parquet")).exit_code == 0
    result = run_cli(PROVIDER, "runs", "--json")
    [row] = json.loads(result.stdout)
    assert row["window_start"].startswith("2024-03-04T16:00") and row["outcome"] == "ok"
    assert row["records"]["calls"] == read_table(tmp_path / "a.parquet").num_rows
    assert row["files"][0]["path"] == str(tmp_path / "a.parquet") and len(row["checksum"]) == 64
    assert "youlianyun" in run_cli("runs").stdout


def test_a_held_lock_makes_the_second_run_wait_then_exit_75(profile: Path, tmp_path: Path) -> None:
    with locking.exclusive(Key(PROVIDER, "default", SID), 0):
        began = time.monotonic()
        result = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "x.csv"), "--wait-lock", "0.5")
        waited = time.monotonic() - began
    assert result.exit_code == ExitCode.TEMPORARY
    assert "another cdrfetch run holds the lock" in result.stderr and "--wait-lock" in result.stderr
    assert waited >= 0.5
    assert not (tmp_path / "x.csv").exists()


def test_reset_state_needs_confirmation(profile: Path, tmp_path: Path) -> None:
    assert pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv")).exit_code == 0
    refused = pull(profile, "--since-last", "--reset-state", "-o", str(tmp_path / "b.csv"))
    assert refused.exit_code == ExitCode.USAGE and "--yes" in refused.stderr
    assert len(Ledger().runs(PROVIDER)) == 1
    done = pull(profile, "--date", "2024-03-06", "--reset-state", "--yes", "-o", str(tmp_path / "c.csv"))
    assert done.exit_code == 0
    assert [r["window_start"][:10] for r in Ledger().runs(PROVIDER)] == ["2024-03-05"]


def test_summary_json_is_written_on_success_and_failure(
    server: SandboxServer, profile: Path, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    summary = tmp_path / "summary.json"
    server.emulator.faults.fail_next(1, 503, "billList")
    assert (
        pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"), "--summary-json", str(summary)).exit_code
        == 0
    )
    data = json.loads(summary.read_text())
    assert data["exit_code"] == 0 and data["retries"] == 1 and data["records"]["calls"] > 0
    assert data["window_start"] == "2024-03-04T16:00:00+00:00" and data["files"][0]["rows"] == data["records"]["calls"]
    for key in list(memory_keyring.store):
        memory_keyring.store[key] = "wrong"
    failed = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "b.csv"), "--summary-json", str(summary))
    assert failed.exit_code == ExitCode.AUTH
    assert json.loads(summary.read_text())["exit_code"] == ExitCode.AUTH
    assert Ledger().runs(PROVIDER)[0]["outcome"] == "failed"


def test_json_logs_carry_the_summary_on_stderr(profile: Path, tmp_path: Path) -> None:
    result = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"), "--log-format", "json")
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[-1]["msg"].startswith("wrote")
    assert any(line.get("summary", {}).get("exit_code") == 0 for line in lines)


def test_a_world_writable_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("profiles: {default: {youlianyun: {}}}\n", encoding="utf-8")
    config.chmod(0o666)
    result = run_cli(PROVIDER, "pull", "--config", str(config), "--date", "2024-03-05", "-o", "-")
    assert result.exit_code == 78 and "writable by others" in result.stderr, result.stderr


def test_secret_from_a_file_variable(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    settings = server.emulator.profile(server.url)
    secret_file = tmp_path / "token"
    secret_file.write_text(settings.pop("auth_token") + "\n")
    profile = write_profile(PROVIDER, settings, tmp_path / "config.yaml", memory_keyring)
    monkeypatch.setenv("CDRFETCH_YOULIANYUN_AUTH_TOKEN_FILE", str(secret_file))
    secret_file.chmod(0o644)  # readable by others: refused like a plaintext secret in a config file
    refused = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"))
    assert refused.exit_code == 78 and "readable by group/others" in refused.stderr, refused.stderr
    secret_file.chmod(0o600)
    assert pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv")).exit_code == 0
    shown = run_cli(PROVIDER, "config", "--config", str(profile), "--json")
    row = next(r for r in json.loads(shown.stdout)["settings"] if r["setting"] == "auth_token")
    assert row == {
        "setting": "auth_token",
        "value": "********",
        "source": "env CDRFETCH_YOULIANYUN_AUTH_TOKEN_FILE",
        "secret": True,
    }


def test_headless_keyring_fails_fast_with_a_hint(
    server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    settings = server.emulator.profile(server.url)
    settings.pop("auth_token")
    profile = write_profile(PROVIDER, settings, tmp_path / "config.yaml", memory_keyring)
    keyring.set_keyring(fail.Keyring())
    result = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"))
    assert result.exit_code == ExitCode.CONFIG
    first, hint = result.stderr.strip().splitlines()[-2:]
    assert "setting 'auth_token' is not set" in first and "no keyring backend" in first
    assert "CDRFETCH_YOULIANYUN_AUTH_TOKEN_FILE" in hint and "login" not in hint  # login cannot work here


class HangingKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(5)
        return None


def test_a_locked_keyring_never_hangs(
    server: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    settings = server.emulator.profile(server.url)
    settings.pop("auth_token")
    profile = write_profile(PROVIDER, settings, tmp_path / "config.yaml", memory_keyring)
    keyring.set_keyring(HangingKeyring())
    monkeypatch.setenv("CDRFETCH_KEYRING_TIMEOUT", "0.3")
    began = time.monotonic()
    result = pull(profile, "--date", "2024-03-05", "-o", str(tmp_path / "a.csv"))
    assert result.exit_code == ExitCode.CONFIG and "did not answer" in result.stderr and "auth_token" in result.stderr
    assert time.monotonic() - began < 4


def test_login_from_stdin_stores_in_the_keyring(memory_keyring: MemoryKeyring) -> None:
    result = run_cli(PROVIDER, "login", input="t0ken-from-stdin\n")
    assert result.exit_code == 0, result.stderr
    assert memory_keyring.store[("cdrfetch", "default/youlianyun/auth_token")] == "t0ken-from-stdin"
    assert "t0ken-from-stdin" not in result.stderr + result.stdout
    assert run_cli(PROVIDER, "login", "--delete").exit_code == 0
    assert memory_keyring.store == {}


def test_doctor_and_check(profile: Path, memory_keyring: MemoryKeyring) -> None:
    ok = run_cli(PROVIDER, "check", "--config", str(profile))
    assert ok.exit_code == 0, ok.stdout
    assert [line.split()[0] for line in ok.stdout.splitlines() if not line.startswith(" ")] == ["OK"] * 7
    for key in list(memory_keyring.store):
        memory_keyring.store[key] = "wrong"
    bad = run_cli("doctor", "--config", str(profile))
    assert bad.exit_code == ExitCode.AUTH
    assert "FAIL  youlianyun login" in bad.stdout and "hint:" in bad.stdout


def test_doctor_without_any_configuration_fails_with_a_hint(tmp_path: Path) -> None:
    result = run_cli("doctor")
    assert result.exit_code == ExitCode.CONFIG
    assert "no provider is configured" in result.stdout


@pytest.mark.parametrize("provider", providers.names())
def test_every_provider_passes_its_sandbox_check(provider: str) -> None:
    result = run_cli(provider, "check", "--sandbox")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert f"OK    {provider} login" in result.stdout


@pytest.mark.parametrize("provider", providers.names())
def test_since_last_twice_on_every_provider_writes_each_record_once(provider: str, tmp_path: Path) -> None:
    for _ in range(2):
        result = run_cli(provider, "pull", "--sandbox", "--since-last", "-o", f"{tmp_path}/", "--set", "lookback=2d")
        assert result.exit_code == 0, result.stderr
    calls = [p for p in tmp_path.rglob("*.parquet") if len(p.suffixes) == 1]
    ids = [rid for path in calls for rid in read_table(path).column("record_id").to_pylist()]
    runs = Ledger().runs(provider)
    assert len(runs) == 2 and datetime.fromisoformat(runs[0]["window_start"]) < datetime.fromisoformat(
        runs[1]["window_end"]
    )
    assert len(ids) == len(set(ids)) == sum(run["records"]["calls"] for run in runs)


def test_runs_refuses_an_unknown_provider_and_a_limit_below_one() -> None:
    unknown = run_cli("runs", "--provider", "laafic")
    assert unknown.exit_code == 2 and "unknown provider 'laafic'" in unknown.stderr
    assert run_cli("runs", "-n", "-1").exit_code == 2


def test_runs_shows_the_profile_and_whole_times(tmp_path: Path) -> None:
    assert run_cli("laaffic", "pull", "--sandbox", "-o", str(tmp_path / "a.parquet"), "-q").exit_code == 0
    listed = run_cli("runs")
    header, row = listed.stdout.splitlines()[:2]
    cells = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert cells["profile"] == "default" and cells["provider"] == "laaffic"
    assert cells["finished"].endswith("+00:00") and " -> " in cells["window"]
