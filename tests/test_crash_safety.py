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

from cdrfetch.ledger import Ledger
from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import ExpectedCall
from cdrfetch.windows import Window, zone
from tests.helpers import read_table

PROVIDER = "youlianyun"


def pull(out: Path, crashpoint: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CDRFETCH_CRASHPOINT"}
    if crashpoint:
        env["CDRFETCH_CRASHPOINT"] = crashpoint
    command = [sys.executable, "-m", "cdrfetch", PROVIDER, "pull", "--sandbox", "--since-last", "-o", f"{out}/", "-q"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("crashpoint", ["chunk-spooled", "before-rename", "before-ledger"])
def test_kill_then_rerun_completes_exactly(tmp_path: Path, crashpoint: str) -> None:
    out = tmp_path / "cdrs"
    killed = pull(out, crashpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finals = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    if crashpoint == "before-ledger":
        assert [read_table(p).num_rows > 0 for p in finals] == [True]  # complete file, just not recorded
    else:
        assert finals == []
    assert Ledger().runs(PROVIDER) == []

    rerun = pull(out, None)
    assert rerun.returncode == 0, rerun.stderr
    [run] = Ledger().runs(PROVIDER)
    assert run["outcome"] == "ok"
    [path] = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert not list(out.rglob(".*.partial"))
    window = Window(
        datetime.fromisoformat(run["window_start"]), datetime.fromisoformat(run["window_end"]), zone("Asia/Shanghai")
    )
    expected = emulator_class(PROVIDER)().expected_calls(window)
    rows = read_table(path).to_pylist()
    got = collections.Counter(ExpectedCall(r["caller"], r["callee"], r["start_time"], r["duration_s"]) for r in rows)
    assert got == collections.Counter(expected) and len(expected) > 0
