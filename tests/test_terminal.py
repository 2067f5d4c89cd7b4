"""Multi-chunk sandbox pulls with stderr on a real pseudo-terminal: the rich progress display is
drawn, cleaned up, and does not get in the way of the pull; on a plain pipe nothing of it shows.

The display only exists when stderr is a terminal, so CliRunner (which captures into buffers)
never exercises it; these tests run the CLI as a child process on a pty instead.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from cdrfetch import providers

pty = pytest.importorskip("pty", reason="pseudo-terminals are POSIX only")

TIMEOUT = 120.0  # seconds per child: a hung pull fails the test instead of blocking the suite
UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"  # rich's live display hides the cursor while it draws


@dataclass(frozen=True)
class Case:
    """One provider's pull: the window (explicit offsets, so no setting decides where it lies) and
    how many chunks the provider cuts it into."""

    provider: str
    start: datetime
    end: datetime
    chunks: int

    def args(self, out: Path, summary: Path) -> list[str]:
        return [
            sys.executable, "-m", "cdrfetch", self.provider, "pull", "--sandbox",
            "--from", self.start.isoformat(), "--to", self.end.isoformat(),
            "-o", str(out), "--summary-json", str(summary),
        ]  # fmt: skip


def midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=tz)


def case(provider: str) -> Case:
    """The window for `provider`, computed when the test runs (not at collection, so every xdist
    worker collects the same test ids, and the days relative to today are fresh)."""
    today = datetime.now(SHANGHAI).date()
    if provider == "huawei-cec":  # 3-day chunks: 3 + 3 + 1
        return Case(provider, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 8, tzinfo=UTC), 3)
    if provider == "polycom":  # 1-day chunks
        return Case(provider, datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC), 3)
    if provider == "laaffic":  # 31-day chunks; the emulator keeps only about two months back from today
        start, end = today - timedelta(days=45), today - timedelta(days=5)
        return Case(provider, midnight(start, SHANGHAI), midnight(end, SHANGHAI), 2)
    if provider == "youlianyun":  # one chunk per Shanghai day, and only days that are over
        return Case(provider, midnight(today - timedelta(days=3), SHANGHAI), midnight(today, SHANGHAI), 3)
    raise AssertionError(f"no terminal test window for provider {provider!r}; add one to case()")


def child_env(tmp_path: Path) -> dict[str, str]:
    """The test's own environment (XDG dirs already private to tmp_path), a private data dir, and a
    colour terminal of a fixed size, so the display is drawn the same way everywhere."""
    env = dict(os.environ, CDRFETCH_DATA_DIR=str(tmp_path / "data"))
    env.update(TERM="xterm-256color", COLUMNS="100", LINES="30")
    # rich reads these to override its own terminal detection; a CI runner may set any of them
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLORTERM"):
        env.pop(name, None)
    return env


def run_on_pty(command: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run `command` with stdin and stderr on a pseudo-terminal; its exit code and what it drew."""
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(
            command, stdin=slave, stdout=subprocess.DEVNULL, stderr=slave, env=env, cwd=cwd, close_fds=True
        )
    finally:
        os.close(slave)  # only the child holds the slave now, so the master sees EOF (EIO) when it exits
    drawn = bytearray()
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                child.kill()
                child.wait()
                pytest.fail(f"{command[3:5]} did not finish within {TIMEOUT:.0f} s:\n{drawn.decode(errors='replace')}")
            readable, _, _ = select.select([master], [], [], min(left, 0.5))
            if readable:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO on Linux: every slave descriptor is closed
                    break
                if not data:
                    break
                drawn += data
            elif child.poll() is not None:
                break  # exited and nothing left to read (a leftover holder of the slave must not block us)
        return child.wait(timeout=TIMEOUT), drawn.decode("utf-8", errors="replace")
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
            child.wait()


def check_output(out: Path, summary: Path, pull: Case) -> int:
    """The Parquet file has rows, all inside the window; every chunk ran. Returns the row count."""
    assert out.is_file()
    table = pq.read_table(out)
    assert table.num_rows > 0
    outside = [t for t in table.column("start_time").to_pylist() if not pull.start <= t < pull.end]
    assert outside == [], f"{len(outside)} of {table.num_rows} rows outside the window, e.g. {outside[:3]}"
    chunks = json.loads(summary.read_text(encoding="utf-8"))["chunks"]
    # a single-chunk pull would not exercise bars being removed and later bars being updated
    assert [c["status"] for c in chunks] == ["ok"] * pull.chunks
    return int(table.num_rows)


@pytest.mark.parametrize("provider", providers.names())
def test_multi_chunk_pull_on_a_terminal_draws_progress(tmp_path: Path, provider: str) -> None:
    pull = case(provider)
    out, summary = tmp_path / "calls.parquet", tmp_path / "summary.json"
    code, drawn = run_on_pty(pull.args(out, summary), child_env(tmp_path), tmp_path)

    assert code == 0, drawn
    assert "Traceback" not in drawn, drawn
    check_output(out, summary, pull)
    # only the terminal path draws these: the pipeline's "chunks" bar (label, bar glyphs, percentage),
    # the cursor hidden while the display is live and shown again once it stops
    lines = re.split(r"[\r\n]+", ANSI.sub("", drawn))
    assert any(re.match(r"chunks\b.*━.*\d+%", line) for line in lines), drawn
    assert HIDE_CURSOR in drawn and SHOW_CURSOR in drawn.split(HIDE_CURSOR, 1)[1], drawn
    # transient display: the log line reporting the file comes after the display is wiped
    assert re.search(r"wrote \d+ calls records", drawn.rsplit(SHOW_CURSOR, 1)[1]), drawn


def test_the_same_pull_on_a_pipe_prints_no_escape_sequences(tmp_path: Path) -> None:
    pull = case("huawei-cec")
    out, summary = tmp_path / "calls.parquet", tmp_path / "summary.json"
    result = subprocess.run(
        pull.args(out, summary),
        env=child_env(tmp_path),  # the same colour-terminal variables: only stderr differs
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    rows = check_output(out, summary, pull)
    assert f"wrote {rows} calls records" in result.stderr  # the log did reach the pipe
    assert "\x1b" not in result.stderr, repr(result.stderr)
