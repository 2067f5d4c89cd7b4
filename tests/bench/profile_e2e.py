"""Profile one `cdrfetch <provider> pull` exactly as bench_e2e.py runs it (same export, emulator, config).

Usage: .venv/bin/python tests/bench/profile_e2e.py [--rows N] [--provider P] [--out pull.prof] [--top 25]

The pull runs once under cProfile (`python -m cProfile -o OUT -m cdrfetch ...`) against the cached
export bench_e2e.py serves; its wall time and peak RSS are printed, then the functions with the most
own time. Profiling slows Python-heavy code more than Arrow and numpy kernels: read the figures as
where the time goes, and take timings from bench_e2e.py.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_e2e  # noqa: E402 (a module beside this one, not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the export (default 1,000,000)")
    parser.add_argument("--provider", default="youlianyun", choices=bench_e2e.PROVIDERS)
    parser.add_argument("--out", default="pull.prof", help="where the cProfile stats go (default pull.prof)")
    parser.add_argument("--top", type=int, default=25, help="functions to list by own time (default 25)")
    args = parser.parse_args()
    spec = bench_e2e.SPECS[args.provider]
    export = bench_e2e.cached_export(args.provider, args.rows)
    server = subprocess.Popen(
        [sys.executable, bench_e2e.__file__, "--serve", args.provider, str(args.rows), str(export)],
        cwd=bench_e2e.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        hello = json.loads(server.stdout.readline() if server.stdout else "{}")
        with tempfile.TemporaryDirectory(prefix="profile-e2e-") as scratch:
            config, secrets = bench_e2e.contender_config(args.provider, hello["profile"], Path(scratch))
            env = {
                **os.environ,
                **secrets,
                "CDRFETCH_DATA_DIR": str(Path(scratch) / "data"),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            }
            command = [sys.executable, "-m", "cProfile", "-o", str(Path(args.out).resolve()), "-m", "cdrfetch"]
            command += [args.provider, "pull", "-c", str(config), "--from", spec.window[0], "--to", spec.window[1]]
            command += ["-o", str(Path(scratch) / "out.parquet"), "-q", "-y"]
            run = bench_e2e.timed_run(command, env)
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)
    print(f"{args.provider} {args.rows:,} rows under cProfile: {run.seconds:.2f}s, peak RSS {run.peak_mib:.0f} MiB")
    pstats.Stats(args.out).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
