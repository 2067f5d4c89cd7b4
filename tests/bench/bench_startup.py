"""Start-up time: `cdrfetch --help` against `python -c "import typer"`, measured in the same run.

Budget: within 1.3x. The two commands alternate, so load changes hit both alike.
Run: python tests/bench/bench_startup.py [rounds]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

BASELINE = [sys.executable, "-c", "import typer"]
OURS = [sys.executable, "-m", "cdrfetch", "--help"]


def once(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - began


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 31
    once(BASELINE), once(OURS)  # warm the file cache and the bytecode
    samples: dict[str, list[float]] = {"baseline": [], "ours": []}
    for _ in range(rounds):
        samples["baseline"].append(once(BASELINE))
        samples["ours"].append(once(OURS))
    baseline, ours = (statistics.median(samples[key]) for key in ("baseline", "ours"))
    print(f"python -c 'import typer': {baseline * 1000:.1f} ms (median of {rounds})")
    print(f"cdrfetch --help:          {ours * 1000:.1f} ms (median of {rounds})")
    print(f"ratio: {ours / baseline:.2f}x (budget 1.30x)")


if __name__ == "__main__":
    main()
