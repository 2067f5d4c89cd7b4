"""Object storage (`-o s3://...`) against a real S3 endpoint (moto's server, a subprocess on loopback):
objects appear only after a successful run, under the layout's keys; a failed or killed run leaves no
object under a final key; large files go up as a multipart upload that is completed only on success."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing.harness import projection, run_cli
from cdrfetch.windows import Window, zone
from tests.s3_server import S3

DAY = "2026-11-30"
pytestmark = pytest.mark.usefixtures("s3")


def body(s3: S3, key: str) -> bytes:
    return bytes(s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read())


def expected_calls(server: SandboxServer) -> collections.Counter[tuple[object, ...]]:
    """The day's calls by the emulator's own account, independent of the pull."""
    tz = zone("Asia/Shanghai")
    start = datetime.fromisoformat(DAY).replace(tzinfo=tz)
    return collections.Counter(server.emulator.expected_calls(Window(start, start + timedelta(days=1), tz)))


def test_a_pull_lands_as_one_object_under_the_layout(
    s3: S3, profile: Path, server: SandboxServer, tmp_path: Path
) -> None:
    hive = "layout={provider}/{account}/date={date}/{label}.{ext}"
    summary = tmp_path / "summary.json"
    result = run_cli("youlianyun", "pull", "--config", str(profile), "--date", DAY, "-o", s3.url("raw/"), "-q",
                     "--set", hive, "--summary-json", str(summary))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [key] = s3.keys()
    assert key.startswith("raw/youlianyun/") and key.endswith(f"/date={DAY}/{DAY}.parquet")
    data = body(s3, key)
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    assert projection(rows) == expected_calls(server) and rows
    [entry] = json.loads(summary.read_text())["files"]
    assert entry["path"] == s3.url(key) and entry["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_failed_run_leaves_no_object(s3: S3, tmp_path: Path) -> None:
    result = run_cli("youlianyun", "pull", "--sandbox", "--knob", "fail_status=503", "--set", "retries=0",
                     "--date", DAY, "-o", s3.url("raw/"), "-q")  # fmt: skip
    assert result.exit_code == 69, result.stderr
    assert s3.keys() == [] and s3.pending_uploads() == []


def test_an_unreachable_endpoint_is_one_clean_line(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = run_cli("youlianyun", "pull", "--sandbox", "--date", DAY, "-o", s3.url("raw/"), "-q")
    assert result.exit_code == 69, result.stderr
    assert "Traceback" not in result.stderr and "testing" not in result.stderr.replace("--", "")
    assert "hint:" in result.stderr


def test_a_missing_bucket_is_a_clean_failure(s3: S3) -> None:
    result = run_cli("youlianyun", "pull", "--sandbox", "--date", DAY, "-o", "s3://no-such-bucket-here/x/", "-q")
    assert result.exit_code == 69, result.stderr
    assert "no-such-bucket-here" in result.stderr and "Traceback" not in result.stderr


def lake_config(tmp_path: Path, s3: S3, part_size_mb: int = 5) -> Path:
    config = tmp_path / "lake.yaml"
    config.write_text(
        f"destinations:\n  lake:\n    url: {s3.url('raw/')}\n    format: csv\n    part_size_mb: {part_size_mb}\n"
    )
    config.chmod(0o600)
    return config


def big_pull(config: Path, crashpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """A pull large enough for a multipart upload (CSV of ~60,000 calls, >10 MiB), in its own process."""
    env = {k: v for k, v in os.environ.items() if k != "CDRFETCH_CRASHPOINT"}
    if crashpoint:
        env["CDRFETCH_CRASHPOINT"] = crashpoint
    command = [
        sys.executable, "-m", "cdrfetch", "youlianyun", "pull", "--sandbox", "--knob", "rows_min=60000",
        "--knob", "rows_max=60000", "--date", DAY, "--config", str(config), "-o", "lake", "-q",
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_multipart_upload_killed_mid_way_leaves_no_object_and_the_rerun_completes(s3: S3, tmp_path: Path) -> None:
    config = lake_config(tmp_path, s3)
    killed = big_pull(config, "object-mid-upload")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert s3.keys() == []
    assert len(s3.pending_uploads()) == 1  # parts were sent: the upload really was a multipart one

    rerun = big_pull(config)
    assert rerun.returncode == 0, rerun.stderr
    [key] = s3.keys()
    data = body(s3, key)
    assert len(data) > 10 * 2**20
    table = pcsv.read_csv(io.BytesIO(data))
    assert table.num_rows == 60_000 and len(set(table.column("record_id").to_pylist())) == 60_000


@pytest.mark.parametrize("crashpoint", ["chunk-spooled", "before-rename"])
def test_killed_before_the_upload_leaves_no_object(s3: S3, tmp_path: Path, crashpoint: str) -> None:
    env = {**os.environ, "CDRFETCH_CRASHPOINT": crashpoint}
    command = [sys.executable, "-m", "cdrfetch", "youlianyun", "pull", "--sandbox", "--date", DAY,
               "-o", s3.url("raw/"), "-q"]  # fmt: skip
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert s3.keys() == [] and s3.pending_uploads() == []


def test_doctor_checks_each_named_destination(s3: S3, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "profiles: {}\n"
        f"destinations:\n  lake: {s3.url('raw/')}\n  gone: s3://no-such-bucket-here/raw/\n"
        f"  local: {{url: {tmp_path}/out/, format: csv}}\n"
    )
    config.chmod(0o600)
    result = run_cli("doctor", "--config", str(config))
    lines = {line.split()[2]: line.split()[0] for line in result.stdout.splitlines() if line.split()[1:2] == ["to"]}
    assert lines == {"lake": "OK", "gone": "FAIL", "local": "OK"}, result.stdout
    assert result.exit_code != 0


def test_named_destinations_are_checked_when_read(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("profiles: {}\ndestinations:\n  lake: {url: s3://b/, part_size_mb: 1}\n")
    config.chmod(0o600)
    result = run_cli("youlianyun", "pull", "--sandbox", "--config", str(config), "-o", "lake", "-q")
    assert result.exit_code == 78 and "part_size_mb" in result.stderr
    config.write_text("profiles: {}\ndestinations:\n  lake: {url: s3://b/, layuot: x}\n")
    result = run_cli("youlianyun", "pull", "--sandbox", "--config", str(config), "-o", "lake", "-q")
    assert result.exit_code == 78 and "did you mean layout" in result.stderr
    config.write_text("profiles: {}\ndestinations:\n  lake: s3://b/\n")
    result = run_cli("youlianyun", "pull", "--sandbox", "--config", str(config), "-o", "lkae", "-q")
    assert result.exit_code == 2 and "did you mean lake" in result.stderr
    assert not (tmp_path / "lkae").exists() and not Path("lkae").exists()


def test_a_password_in_a_database_url_is_refused() -> None:
    for url in ("postgresql://cdr:hunter2@db.example/x", "postgresql://cdr@db.example/x?password=hunter2"):
        result = run_cli("youlianyun", "pull", "--sandbox", "-o", url, "-q")
        assert result.exit_code == 2 and "hunter2" not in result.stderr + result.stdout
