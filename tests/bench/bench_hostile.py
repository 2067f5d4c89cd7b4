"""Bench: what each hostile answer costs a pull, per provider: exit code, wall time, peak RSS, peak temp disk.

Usage: .venv/bin/python tests/bench/bench_hostile.py [--providers a,b] [--kinds k1,k2]

Every case is `python -m cdrfetch <provider> pull --sandbox --knob KNOB=KIND -o DIR -q`, a user's run
against the provider's emulator serving that hostile archive or JSON answer (cdrfetch.sandbox.hostile).
The child runs with its own TMPDIR, so the temp disk it uses is that directory's size, polled every
20 ms alongside the process tree's RSS (bench_e2e.measured) (and never below the child's own ru_maxrss). The bounds the
issue sets: peak RSS under ~300 MB, temp disk under the configured archive bounds, no traceback, a
documented exit code, nothing left in the output directory. A baseline of the same pull without a
knob is measured in the same run, so the figures can be read against an honest export.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))  # the other benches are modules beside this one, not a package
sys.path.insert(0, str(ROOT))

from bench_e2e import measured  # noqa: E402

from cdrfetch.sandbox import emulator_class  # noqa: E402
from cdrfetch.sandbox.faults import HOSTILE_ARCHIVES, HOSTILE_JSON  # noqa: E402

PROVIDERS = ("youlianyun", "laaffic", "huawei-cec", "polycom")
DOCUMENTED = {0, 2, 3, 65, 69, 73, 74, 75, 77, 78}
# Polycom polls an unreadable status until poll_timeout, as its spec says: a short one keeps the bench short.
EXTRA = {"polycom": ["--set", "poll_timeout=5"]}


@dataclass
class Case:
    provider: str
    knob: str | None
    kind: str | None


@dataclass
class Outcome:
    code: int
    seconds: float
    rss_mib: float
    temp_mib: float
    leftovers: int
    error_line: str


def disk_bytes(directory: Path) -> int:
    """Bytes of every file under `directory` now (files vanish while it is walked: skipped)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def run(case: Case, scratch: Path) -> Outcome:
    """One pull under measurement, in fresh output and temp directories."""
    out, temp = scratch / "out", scratch / "tmp"
    for directory in (out, temp):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    knob = ["--knob", f"{case.knob}={case.kind}"] if case.knob else []
    command = [sys.executable, "-m", "cdrfetch", case.provider, "pull", "--sandbox", *knob,
               *EXTRA.get(case.provider, []), "-o", f"{out}/", "-q"]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(temp), "CDRFETCH_DATA_DIR": str(scratch / "data")}
    disk = [0]
    run = measured(command, env, also=lambda: disk.__setitem__(0, max(disk[0], disk_bytes(temp))))
    lines = [line for line in run.stderr.splitlines() if line.startswith("cdrfetch: error:")]
    if "Traceback" in run.stderr:
        lines = ["TRACEBACK: " + run.stderr.strip().splitlines()[-1]]
    leftovers = sum(1 for path in out.rglob("*") if path.is_file()) if run.code else 0
    return Outcome(run.code, run.seconds, run.peak_mib, disk[0] / 2**20, leftovers, (lines[0] if lines else "")[:90])


def cases(providers: list[str], kinds: set[str] | None) -> list[Case]:
    """The honest pull, then every hostile kind each provider's emulator serves."""
    found = []
    for provider in providers:
        served = emulator_class(provider).hostile_data
        found.append(Case(provider, None, None))
        for knob, values in (("hostile_archive", HOSTILE_ARCHIVES), ("hostile_json", HOSTILE_JSON)):
            if knob in served:
                found += [Case(provider, knob, kind) for kind in values if kinds is None or kind in kinds]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--kinds", default=None, help="only these hostile kinds (comma-separated)")
    args = parser.parse_args()
    kinds = set(args.kinds.split(",")) if args.kinds else None
    print(f"{'provider':11} {'case':34} {'exit':>4} {'wall s':>7} {'RSS MiB':>8} {'tmp MiB':>8}  first error line")
    worst_rss, worst_temp, bad = 0.0, 0.0, []
    with tempfile.TemporaryDirectory(prefix="cdrfetch-hostile-") as scratch:
        for case in cases(args.providers.split(","), kinds):
            outcome = run(case, Path(scratch))
            label = f"{case.knob}={case.kind}" if case.knob else "(honest export)"
            print(f"{case.provider:11} {label:34} {outcome.code:>4} {outcome.seconds:>7.2f} {outcome.rss_mib:>8.1f} "
                  f"{outcome.temp_mib:>8.1f}  {outcome.error_line}", flush=True)  # fmt: skip
            if case.knob:
                worst_rss, worst_temp = max(worst_rss, outcome.rss_mib), max(worst_temp, outcome.temp_mib)
            if outcome.code not in DOCUMENTED or outcome.leftovers or outcome.error_line.startswith("TRACEBACK"):
                bad.append(f"{case.provider} {label}: exit {outcome.code}, {outcome.leftovers} file(s) left")
    print(f"\nhostile cases: peak RSS at most {worst_rss:.1f} MiB, temp disk at most {worst_temp:.1f} MiB")
    print("every case ended cleanly" if not bad else "NOT CLEAN:\n  " + "\n  ".join(bad))


if __name__ == "__main__":
    main()
