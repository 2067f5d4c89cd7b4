"""Clean failures at the edges: signals, killed runs' leftovers, disks, ledgers, clocks and bad settings.

Each case runs the real CLI (in a subprocess where a signal or a file descriptor is involved) and
asserts one line with a hint, the documented exit code, and that nothing half-done is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cdrfetch.ledger import Key, Ledger
from cdrfetch.summary import RunSummary
from cdrfetch.testing.harness import run_cli

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc


def child_env(tmp_path: Path) -> dict[str, str]:
    """The test's private environment, with its own temp dir so leftovers can be inspected."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "CDRFETCH_DATA_DIR": str(tmp_path / "data")}


def cdrfetch(*args: str) -> list[str]:
    return [sys.executable, "-m", "cdrfetch", *args]


def test_sigterm_cleans_up_like_ctrl_c_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = cdrfetch("polycom", "pull", "--sandbox", "--from", "2024-03-01", "--to", "2024-03-20", "-o", f"{out}/")
    child = subprocess.Popen(command, env=child_env(tmp_path), stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "tmp").glob("cdrfetch-*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the run has its temp dir: the pull is under way, not still starting up
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 143, stderr
    assert "cdrfetch: terminated" in stderr and "Traceback" not in stderr
    assert not [p for p in out.rglob("*") if p.is_file()]  # no partial file, no final file
    assert not list((tmp_path / "tmp").iterdir())  # the run's temp dir is gone


def test_what_a_killed_run_left_is_removed_but_a_live_runs_files_are_not(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    dead = 2**22 + 12345  # above the default pid_max: never a running process
    orphan_dir = tmp_path / "tmp" / f"cdrfetch-{dead}-abcd"
    orphan_dir.mkdir(parents=True)
    (orphan_dir / "spool-calls.arrow").write_bytes(b"x" * 100)
    orphan = tmp_path / f".out.parquet.{dead}.x1y2.partial"
    live = tmp_path / f".out.parquet.{os.getpid()}.z3w4.partial"  # this test process: alive
    orphan.write_bytes(b"half")
    live.write_bytes(b"another run, still writing")
    command = cdrfetch("laaffic", "pull", "--sandbox", "-o", str(out), "-q")
    result = subprocess.run(command, env=child_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.exists() and not orphan.exists() and not orphan_dir.exists()
    assert live.read_bytes() == b"another run, still writing"


def test_an_output_path_that_cannot_be_created_is_exit_73(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    result = run_cli("laaffic", "pull", "--sandbox", "-o", str(tmp_path / "afile" / "calls.parquet"))
    assert result.exit_code == 73, result.stderr
    assert "cannot create" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def test_a_full_disk_is_exit_74(tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        command = cdrfetch("laaffic", "pull", "--sandbox", "-o", "-", "--format", "jsonl")
        result = subprocess.run(command, env=child_env(tmp_path), stdout=full, stderr=subprocess.PIPE, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 74, stderr
    assert "cannot write" in stderr and "Traceback" not in stderr


def test_a_corrupt_ledger_fails_with_78_before_any_request_or_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    ledger.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("CDRFETCH_LEDGER", str(ledger))
    out = tmp_path / "calls.parquet"
    result = run_cli("laaffic", "pull", "--sandbox", "-o", str(out))
    assert result.exit_code == 78, result.stderr
    assert "run ledger" in result.stderr and not out.exists()


def test_a_window_ending_in_the_future_is_complete_only_up_to_the_run(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    result = run_cli("laaffic", "pull", "--sandbox", "--date", "today", "-o", str(tmp_path / "today.parquet"))
    assert result.exit_code == 0, result.stderr
    [run] = Ledger().runs("laaffic")
    resumed = Ledger().resume_point(Key("laaffic", run["profile"], run["account"]))
    assert resumed is not None and before - timedelta(seconds=5) <= resumed <= datetime.now(UTC)
    again = run_cli("laaffic", "pull", "--sandbox", "--since-last", "-o", f"{tmp_path}/")
    assert again.exit_code == 0 and "nothing to pull" not in again.stderr, again.stderr


def test_a_resume_point_in_the_future_is_repaired_with_a_warning(tmp_path: Path) -> None:
    first = run_cli("laaffic", "pull", "--sandbox", "--since-last", "-o", f"{tmp_path}/a/")
    assert first.exit_code == 0, first.stderr
    [run] = Ledger().runs("laaffic")
    key = Key("laaffic", run["profile"], run["account"])
    future = datetime.now(UTC) + timedelta(days=2)
    summary = RunSummary("laaffic", key.account, key.profile, future.isoformat(), future.isoformat())
    Ledger().record(key, summary, future, {})  # as if the clock had been two days ahead
    again = run_cli("laaffic", "pull", "--sandbox", "--since-last", "-o", f"{tmp_path}/b/", "--set", "tz=+08:00")
    assert again.exit_code == 0, again.stderr
    [warning] = [line for line in again.stderr.splitlines() if "clock moved back" in line]
    assert "+08:00" in warning and "+00:00" not in warning  # times in the profile's zone, as the user reads them


@pytest.mark.parametrize(
    ("setting", "text"),
    [("retries=-1", "out of range (0 to 100)"), ("timeout=0", "out of range (at least 0.01)"),
     ("max_window_days=40", "out of range (1 to 31)"), ("base_url=http://cdr.example.com/v3", "plain http")],
)  # fmt: skip
def test_settings_out_of_range_or_unsafe_are_78_with_the_rule(setting: str, text: str) -> None:
    result = run_cli("laaffic", "pull", "--sandbox", "--set", setting, "-o", "-")
    assert result.exit_code == 78, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


def test_a_non_numeric_keyring_timeout_is_78(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CDRFETCH_KEYRING_TIMEOUT", "soon")
    config = tmp_path / "config.yaml"
    config.write_text("profiles:\n  default:\n    laaffic:\n      api_key: k\n", encoding="utf-8")
    config.chmod(0o600)
    result = run_cli("laaffic", "pull", "--config", str(config), "-o", "-")
    assert result.exit_code == 78, result.stderr
    assert "CDRFETCH_KEYRING_TIMEOUT" in result.stderr


def test_a_secret_echoed_by_a_server_is_masked_wherever_the_summary_goes() -> None:
    from cdrfetch.redact import REDACTOR

    secret = "s3cr3t-echoed-by-the-server"
    REDACTOR.add(secret)
    summary = RunSummary("laaffic", "acct", "default", "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00")
    summary.warn(f"laaffic: status -18 (reason: bad key {secret})")
    summary.notes["echo"] = {secret: [secret]}
    key = Key("laaffic", "default", "acct")
    Ledger().record(key, summary, None, {})
    produced = json.dumps(summary.to_dict()) + json.dumps(Ledger().runs("laaffic"))
    assert secret not in produced and "bad key" in produced


@pytest.mark.parametrize(
    ("setting", "text"),
    [("max_answer_mb=inf", "not a finite number"), ("deadline=nan", "not a finite number"),
     ("base_url=https://api.example.com:99999/v3", "malformed URL"), ("base_url=ftp://example.com/v3", "refusing")],
)  # fmt: skip
def test_values_that_used_to_crash_are_78(setting: str, text: str) -> None:
    result = run_cli("laaffic", "pull", "--sandbox", "--set", setting, "-o", "-")
    assert result.exit_code == 78, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


def test_a_directory_as_config_file_is_78(tmp_path: Path) -> None:
    result = run_cli("laaffic", "pull", "--config", str(tmp_path), "-o", "-")
    assert result.exit_code == 78 and "cannot read" in result.stderr, result.stderr


@pytest.mark.parametrize(("knob", "code"), [("truncate_downloads=abc", 2), ("malformed=no", 0), ("empty=yes", 0)])
def test_knob_values_are_read_like_settings(knob: str, code: int) -> None:
    result = run_cli("polycom", "pull", "--sandbox", "--knob", knob, "-o", "-", "--format", "jsonl")
    assert result.exit_code == code, result.stderr
    if knob == "empty=yes":
        assert result.stdout == ""
    elif code == 0:
        assert result.stdout.count("\n") > 0  # `no` turned the fault off


@pytest.mark.parametrize("provider", ["youlianyun", "laaffic", "polycom"])
def test_a_providers_help_stays_light(provider: str) -> None:
    probe = f"""
import sys
from cdrfetch.cli import main
try:
    main([{provider!r}, "--help"])
except SystemExit:
    pass
print("HEAVY", [m for m in ("pyarrow", "yaml", "keyring") if m in sys.modules])
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.rsplit("HEAVY", 1)[1].strip() == "[]"
