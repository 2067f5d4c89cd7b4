"""SIGKILL at each crash point of a real sandbox pull: no half file under a final name, the ledger
not advanced, and the re-run completes with exactly the expected records."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from cdrfetch import providers
from cdrfetch.ledger import Ledger
from cdrfetch.sandbox import emulator_class
from cdrfetch.testing.harness import projection, read_table
from cdrfetch.windows import Window, zone

CRASHPOINTS = ["chunk-spooled", "before-rename", "before-ledger"]


def pull(provider: str, out: Path, crashpoint: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CDRFETCH_CRASHPOINT"}
    if crashpoint:
        env["CDRFETCH_CRASHPOINT"] = crashpoint
    command = [sys.executable, "-m", "cdrfetch", provider, "pull", "--sandbox", "--since-last", "-o", f"{out}/", "-q"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("provider", providers.names())
@pytest.mark.parametrize("crashpoint", CRASHPOINTS)
def test_kill_then_rerun_completes_exactly(tmp_path: Path, provider: str, crashpoint: str) -> None:
    out = tmp_path / "cdrs"
    killed = pull(provider, out, crashpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finals = final_files(out)
    if crashpoint == "before-ledger":  # complete files, just not recorded
        assert finals
        for path in finals:
            read_table(path)  # raises on a truncated Parquet file
    else:
        assert finals == []
    assert Ledger().runs(provider) == []

    rerun = pull(provider, out, None)
    assert rerun.returncode == 0, rerun.stderr
    [run] = Ledger().runs(provider)
    assert run["outcome"] == "ok"
    [path] = [p for p in final_files(out) if len(p.suffixes) == 1]  # the calls file (side tables: .<table>.parquet)
    assert not list(out.rglob(".*.partial"))
    window = Window(
        datetime.fromisoformat(run["window_start"]), datetime.fromisoformat(run["window_end"]), zone("Asia/Shanghai")
    )
    expected = emulator_class(provider)().expected_calls(window)
    rows = read_table(path).to_pylist()
    assert projection(rows) == collections.Counter(expected) and len(expected) > 0


def final_files(out: Path) -> list[Path]:
    """Files under their final names (temp files are hidden dot-files)."""
    return sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
