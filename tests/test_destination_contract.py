"""The destination contract, the same for every destination: a real sandbox pull (a subprocess, as a user
runs it) into local files, S3 objects (moto), a local Delta table, a Delta table on S3 and PostgreSQL.

- complete: the stored records are exactly the emulator's own for the window;
- idempotent: pulling the window again leaves exactly those records;
- crash-safe: a SIGKILL after a chunk was fetched leaves nothing half-written, and the re-run completes;
- concurrent: two runs of the same window at the same time end with each record once.

Each destination's own tests (test_destination_*.py) cover its specifics, schema refusal and evolution
among them (a property files do not have).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cdrfetch.sandbox import emulator_class
from cdrfetch.windows import Window, zone

FROM, TO = "2026-11-26", "2026-11-29"


@dataclass
class Target:
    """A destination: the `-o` arguments that name it, and how to read back its calls."""

    args: list[str]
    read: Callable[[], list[str]]  # the record_id of every stored call


def expected() -> int:
    """How many calls the emulator serves over the window (its own count, not the pull's)."""
    tz = zone("Asia/Shanghai")
    start = datetime.fromisoformat(FROM).replace(tzinfo=tz)
    return len(emulator_class("youlianyun")().expected_calls(Window(start, start + timedelta(days=3), tz)))


def pull(target: Target, tmp_path: Path, crashpoint: str | None = None, data: str = "a") -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CDRFETCH_CRASHPOINT"}
    env["CDRFETCH_DATA_DIR"] = str(tmp_path / f"machine-{data}")
    if crashpoint:
        env["CDRFETCH_CRASHPOINT"] = crashpoint
    command = [sys.executable, "-m", "cdrfetch", "youlianyun", "pull", "--sandbox", "--from", FROM, "--to", TO, "-q"]
    return subprocess.Popen([*command, "-o", *target.args], env=env, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str]) -> int:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode in (0, -signal.SIGKILL), stderr
    return process.returncode


@pytest.fixture(params=["files", "objects", "delta", "delta-s3", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    kind = request.param
    if kind == "files":
        out = tmp_path / "out"
        return Target([f"{out}/"], lambda: [r for p in out.rglob("[!.]*.parquet") for r in _ids(pq.read_table(p))])
    if kind == "postgres":
        db = request.getfixturevalue("pg")
        return Target([db.url()], lambda: [r for (r,) in _rows(db, "SELECT record_id FROM calls")])
    if kind == "delta":
        out = tmp_path / "lake"
        return Target([str(out), "--format", "delta"], lambda: _delta(str(out)))
    s3 = request.getfixturevalue("s3")
    if kind == "objects":

        def objects() -> list[str]:
            bodies = [s3.client().get_object(Bucket=s3.bucket, Key=k)["Body"].read() for k in s3.keys()]  # noqa: SIM118
            return [r for body in bodies for r in _ids(pq.read_table(io.BytesIO(body)))]

        return Target([s3.url("raw/")], objects)
    return Target([s3.url("lake/"), "--format", "delta"], lambda: _delta(s3.url("lake/")))


def _ids(table: object) -> list[str]:
    return list(table.column("record_id").to_pylist())  # type: ignore[attr-defined]


def _rows(db: object, sql: str) -> list[tuple[str]]:
    try:
        return db.query(sql)  # type: ignore[attr-defined,no-any-return]
    except Exception:  # no table yet: nothing stored
        return []


def _delta(url: str) -> list[str]:
    from deltalake import DeltaTable

    try:
        table = DeltaTable(url.rstrip("/") + "/calls")
    except Exception:  # no table yet: nothing stored
        return []
    return _ids(table.to_pyarrow_table(columns=["record_id"]))


def stored_once(target: Target) -> int:
    ids = target.read()
    assert len(ids) == len(set(ids)), "a record is stored twice"
    return len(ids)


def test_complete_and_idempotent(target: Target, tmp_path: Path) -> None:
    count = expected()
    assert finished(pull(target, tmp_path)) == 0
    assert stored_once(target) == count > 0
    assert finished(pull(target, tmp_path)) == 0
    assert stored_once(target) == count


def test_killed_after_a_chunk_then_rerun(target: Target, tmp_path: Path) -> None:
    count = expected()
    assert finished(pull(target, tmp_path, "chunk-spooled")) == -signal.SIGKILL
    assert stored_once(target) == 0  # the killed chunk is nowhere, and it was the first
    assert finished(pull(target, tmp_path)) == 0
    assert stored_once(target) == count


def test_two_runs_at_once_store_each_record_once(target: Target, tmp_path: Path) -> None:
    count = expected()
    first, second = pull(target, tmp_path, data="a"), pull(target, tmp_path, data="b")
    assert finished(first) == 0 and finished(second) == 0
    assert stored_once(target) == count
