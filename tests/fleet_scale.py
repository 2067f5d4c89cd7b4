"""The fleet at scale: many Youlianyun accounts (each with its own credentials and data) on one emulator,
planned into units and run by worker processes started the way a Kubernetes Indexed Job starts them
(`cdrfetch plan --shard i/N --jsonl | cdrfetch run-unit -`), into one destination.

Used by tests/test_fleet_scale.py (the proof) and tests/bench/bench_fleet.py (units and records per
second against one worker).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.windows import zone

SHANGHAI = zone("Asia/Shanghai")
FIRST_DAY = date(2026, 10, 1)


def credentials(number: int) -> tuple[str, str, str]:
    """Account `number`'s (sid, token, app id): deterministic, distinct."""
    digest = hashlib.sha256(f"account-{number}".encode()).hexdigest()
    return digest[:32], digest[32:64], hashlib.md5(f"app-{number}".encode()).hexdigest()


def name(number: int) -> str:
    return f"a{number:03d}"


@dataclass(frozen=True)
class Fleet:
    """`accounts` accounts over `days` days, served by `server`; `config` describes them all."""

    server: SandboxServer
    accounts: int
    days: int
    config: Path
    env: dict[str, str]

    @property
    def window(self) -> tuple[str, str]:
        return FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=self.days)).isoformat()

    @property
    def complete_until(self) -> datetime:
        """Where every account's state must end: the end of the last day (Shanghai midnight)."""
        end = FIRST_DAY + timedelta(days=self.days)
        return datetime(end.year, end.month, end.day, tzinfo=SHANGHAI)

    def expected(self) -> dict[str, int]:
        """Per account sid, how many calls the emulator serves over the window."""
        days = [FIRST_DAY + timedelta(days=n) for n in range(self.days)]
        counts = {}
        for number in range(self.accounts):
            sid, _, app = credentials(number)
            counts[sid] = sum(len(self.server.emulator.rows(day, sid, app)) for day in days)
        return counts

    def worker(self, destination: str, index: int, count: int) -> Worker:
        """One worker of an Indexed Job of `count` (JOB_COMPLETION_INDEX=index), in its own session."""
        start, end = self.window
        script = (
            f'"$PY" -m cdrfetch plan --from {start} --to {end} -o {destination} --config "$CONFIG" '
            f'--shard "$JOB_COMPLETION_INDEX/{count}" --jsonl | "$PY" -m cdrfetch run-unit - --config "$CONFIG" -q'
        )
        env = {**self.env, "PY": sys.executable, "CONFIG": str(self.config), "JOB_COMPLETION_INDEX": str(index)}
        env["CDRFETCH_DATA_DIR"] = str(self.config.parent / f"machine-{index}")  # every pod its own disk
        log = self.config.parent / f"worker-{index}.log"  # a pipe nobody reads would fill up and block the worker
        with log.open("ab") as stderr:
            process = subprocess.Popen(["/bin/sh", "-c", script], env=env, start_new_session=True, stderr=stderr)
        return Worker(process, log)


@dataclass(frozen=True)
class Worker:
    """One worker process (a pod) and the file its stderr goes to."""

    process: subprocess.Popen[bytes]
    log: Path

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the worker and everything it started (the pod is gone)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def fleet(directory: Path, accounts: int, days: int, destinations: dict[str, object]) -> Iterator[Fleet]:
    """The emulator serving every account, a config naming them and `destinations`, and the secrets in env."""
    emulator = emulator_class("youlianyun")(
        accounts={credentials(n)[0]: credentials(n)[1] for n in range(accounts)},
        apps={credentials(n)[2]: credentials(n)[0] for n in range(accounts)},
        rows_min=2,
        rows_max=8,
    )
    with SandboxServer(emulator) as server:
        section = {
            "base_url": emulator.profile(server.url)["base_url"],
            "accounts": {
                name(n): {"account_sid": credentials(n)[0], "app_id": credentials(n)[2]} for n in range(accounts)
            },
        }
        config = directory / "fleet.yaml"
        config.write_text(
            yaml.safe_dump({"profiles": {"default": {"youlianyun": section}}, "destinations": destinations})
        )
        config.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDRFETCH_")}
        env |= {f"CDRFETCH_YOULIANYUN_{name(n).upper()}_AUTH_TOKEN": credentials(n)[1] for n in range(accounts)}
        yield Fleet(server, accounts, days, config, env)
