"""Start-up time: `cdrfetch --help` against `python -c "import typer"`, measured in the same run.

Budget: within 1.3x (wave 2 target 1.15x). The two commands alternate, so load changes hit both alike.
Both run with their bytecode cached, as after `pip install` (which compiles every module): the
cache goes to a private directory (PYTHONPYCACHEPREFIX) so an environment with
PYTHONDONTWRITEBYTECODE=1 does not make only the editable checkout compile its sources on every run.
Run: python tests/bench/bench_startup.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

BASELINE = [sys.executable, "-c", "import typer"]
OURS = [sys.executable, "-m", "cdrfetch", "--help"]


def once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run; CPU time hardly moves with the machine's load."""
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 31
    with tempfile.TemporaryDirectory(prefix="cdrfetch-pycache-") as cache:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        measure(rounds, env)


def measure(rounds: int, env: dict[str, str]) -> None:
    once(BASELINE, env), once(OURS, env)  # warm the file cache and write the bytecode
    samples: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
    for _ in range(rounds):
        samples["baseline"].append(once(BASELINE, env))
        samples["ours"].append(once(OURS, env))
    for position, kind in enumerate(("wall", "cpu")):
        baseline, ours = (statistics.median(run[position] for run in samples[key]) for key in ("baseline", "ours"))
        print(f"{kind:4}: python -c 'import typer' {baseline * 1000:.1f} ms, cdrfetch --help {ours * 1000:.1f} ms "
              f"(medians of {rounds}): {ours / baseline:.2f}x (budget 1.30x, target 1.15x)")  # fmt: skip


if __name__ == "__main__":
    main()
