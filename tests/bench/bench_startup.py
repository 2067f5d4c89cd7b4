"""Start-up time: `cdrfetch --help` against `python -c "import typer"`, measured in the same run.

Budget: within 1.3x. Run: python tests/bench/bench_startup.py [rounds]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def timed(command: list[str], rounds: int) -> float:
    """Median wall time of `rounds` runs (after one warm-up run)."""
    subprocess.run(command, capture_output=True, check=True)
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    baseline = timed([sys.executable, "-c", "import typer"], rounds)
    ours = timed([sys.executable, "-m", "cdrfetch", "--help"], rounds)
    print(f"python -c 'import typer': {baseline * 1000:.1f} ms (median of {rounds})")
    print(f"cdrfetch --help:          {ours * 1000:.1f} ms (median of {rounds})")
    print(f"ratio: {ours / baseline:.2f}x (budget 1.30x)")


if __name__ == "__main__":
    main()
