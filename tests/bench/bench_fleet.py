"""Bench: a fleet's units run by N worker processes against one worker, into one destination.

Usage: .venv/bin/python tests/bench/bench_fleet.py [--accounts 50] [--days 30] [--workers 4]
       [--destinations postgres,delta,delta-s3]

The scenario is the scale proof's (tests/fleet_scale.py): one Youlianyun emulator serving every
account with its own credentials and data, a config naming them all, and workers started the way a
Kubernetes Indexed Job starts them (`cdrfetch plan --shard i/N --jsonl | cdrfetch run-unit -`, each
with its own data directory). For each destination, one worker runs all units into a fresh database
or table, then N workers run them into another; printed: wall seconds, units/s, records/s, and the
N-worker speed-up. `delta-s3` uses a moto S3 server (a subprocess), whose bucket listing grows with
the bucket: expect it to be slow at full scale.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fleet_scale import fleet


def run(
    directory: Path, accounts: int, days: int, workers: int, destination: dict[str, object]
) -> tuple[float, int, int]:
    """Wall seconds, units and records of one run of `workers` workers into `destination`."""
    with fleet(directory, accounts, days, {"target": destination}) as scale:
        began = time.monotonic()
        started = [scale.worker("target", index, workers) for index in range(workers)]
        for worker in started:
            if worker.wait(timeout=7200) != 0:
                raise SystemExit(f"a worker failed:\n{worker.tail()}")
        seconds = time.monotonic() - began
        return seconds, accounts * days, sum(scale.expected().values())


def destinations(kinds: list[str], root: Path) -> dict[str, object]:
    """Each destination kind's factory: a fresh target per run."""
    made: dict[str, object] = {}
    if "postgres" in kinds:
        from tests.pg_server import start_cluster

        cluster = start_cluster()
        made["postgres"] = cluster
    if "delta-s3" in kinds:
        import os

        port = 45000 + uuid.uuid4().int % 1000
        moto = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        made["moto"] = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
        time.sleep(2)
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true",
        )  # fmt: skip
    return made


def target(kind: str, servers: dict[str, object], root: Path) -> dict[str, object]:
    name = f"run{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        cluster = servers["postgres"]
        with cluster.connect(autocommit=True) as conn:  # type: ignore[attr-defined]
            conn.execute(f'CREATE DATABASE "{name}"')
        import os

        os.environ["PGPASSWORD"] = cluster.password  # type: ignore[attr-defined]
        return {"url": cluster.url(name)}  # type: ignore[attr-defined]
    if kind == "delta":
        return {"url": str(root / name), "format": "delta"}
    import boto3

    bucket = f"bench-{name}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return {"url": f"s3://{bucket}/tables/", "format": "delta"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--destinations", default="postgres,delta")
    args = parser.parse_args()
    kinds = args.destinations.split(",")
    root = Path(tempfile.mkdtemp(prefix="cdrfetch-bench-fleet-"))
    servers = destinations(kinds, root)
    try:
        print(f"{args.accounts} accounts x {args.days} days = {args.accounts * args.days} units")
        for kind in kinds:
            results = {}
            for workers in (1, args.workers):
                directory = root / f"{kind}-{workers}"
                directory.mkdir()
                seconds, units, records = run(directory, args.accounts, args.days, workers, target(kind, servers, root))
                results[workers] = seconds
                print(f"{kind:9} {workers} worker(s): {seconds:7.1f} s  {units / seconds:6.1f} units/s  "
                      f"{records / seconds:8.0f} records/s", flush=True)  # fmt: skip
            print(f"{kind:9} speed-up with {args.workers} workers: {results[1] / results[args.workers]:.2f}x")
    finally:
        if "postgres" in servers:
            from tests.pg_server import stop_cluster

            stop_cluster(servers["postgres"])  # type: ignore[arg-type]
        if "moto" in servers:
            servers["moto"].terminate()  # type: ignore[attr-defined]
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
