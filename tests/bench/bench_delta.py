"""Bench: one chunk of 1,000,000 normalized calls into Delta tables, against a plain Parquet write.

Run: .venv/bin/python tests/bench/bench_delta.py [--rows N]

The rows (the calls schema, one UTC day, SHA-1 record ids, realistic numbers and JSON extras) are
generated once with pyarrow into an Arrow IPC file. Each case then runs in its own child process,
which reads that file batch by batch (as the pipeline replays its spool) and reports the seconds
of the write alone and its peak RSS (ru_maxrss):

- parquet: pyarrow.parquet.ParquetWriter to a local file (the baseline);
- delta first load: DeltaTables.open(...).store(chunk, ...) into a fresh local table (stage + merge);
- delta re-run: the same rows stored again into that table (a merge that inserts nothing);
- duckdb copy to parquet: one DuckDB `COPY ... TO parquet` of the same rows (a second baseline);
- parquet object to s3: the file destination writing the Parquet file and uploading it (multipart) to
  moto's S3 server (a subprocess on 127.0.0.1);
- delta s3 first load: the first load into moto's S3 server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DAY = datetime(2024, 3, 9, tzinfo=timezone.utc)
BATCH = 65_536


def generate(path: Path, rows: int) -> None:
    """1M calls of one day as the pipeline would hand them over: the calls schema, in 64k batches."""
    import hashlib
    import random

    import pyarrow as pa

    from cdrfetch.records import CALLS

    rng = random.Random(7)
    with pa.ipc.new_stream(str(path), CALLS) as writer:
        for first in range(0, rows, BATCH):
            n = min(BATCH, rows - first)
            ids = [hashlib.sha1(f"bench|{i}".encode()).hexdigest() for i in range(first, first + n)]
            starts = [DAY + timedelta(milliseconds=rng.randrange(86_400_000)) for _ in range(n)]
            durations = [rng.randrange(0, 3600) for _ in range(n)]
            data = {
                "provider": ["youlianyun"] * n,
                "account": ["1784fd62ae354a1eca54f8b34e5a9baf"] * n,
                "record_id": ids,
                "call_id": [f"call-{i:012d}" for i in range(first, first + n)],
                "start_time": starts,
                "end_time": [s + timedelta(seconds=d) for s, d in zip(starts, durations, strict=True)],
                "duration_s": durations,
                "billed_duration_s": [(d + 59) // 60 * 60 for d in durations],
                "caller": [f"+8613{rng.randrange(10**9):09d}" for _ in range(n)],
                "callee": [f"+8618{rng.randrange(10**9):09d}" for _ in range(n)],
                "direction": [rng.choice(("inbound", "outbound")) for _ in range(n)],
                "call_type": [rng.choice(("1", "2", "5")) for _ in range(n)],
                "status": [rng.choice(("0", "16", "17", "486")) for _ in range(n)],
                "cost": [None] * n,
                "currency": ["CNY"] * n,
                "country": ["CN"] * n,
                "recording_url": [None] * n,
                "extra": [f'{{"appId":"950a97bce77b885b","userData":"u{rng.randrange(10**6)}"}}' for _ in range(n)],
            }
            writer.write_batch(pa.RecordBatch.from_pydict(data, schema=CALLS))


def batches(path: Path):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        yield from pa.ipc.open_stream(source)


@contextlib.contextmanager
def pa_stream(path: Path):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        yield pa.ipc.open_stream(source)


def case(name: str, data: Path, out: str) -> dict[str, float]:
    """One case, in this (child) process: seconds of the write, peak RSS in MiB."""
    started = time.perf_counter()
    if name == "parquet":
        import pyarrow.parquet as pq

        from cdrfetch.records import CALLS

        with pq.ParquetWriter(out, CALLS) as writer:
            for batch in batches(data):
                writer.write_batch(batch)
        rows = float(pq.read_metadata(out).num_rows)
    elif name == "duckdb":
        import duckdb
        import pyarrow.parquet as pq

        with pa_stream(data) as reader:
            con = duckdb.connect()
            con.register("calls", reader)
            con.execute(f"COPY calls TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
        rows = float(pq.read_metadata(out).num_rows)
    elif name == "objects":
        from cdrfetch.destinations.base import Chunk, Where
        from cdrfetch.destinations.files import Files
        from cdrfetch.records import CALLS

        load = Files(out, "parquet").open({"calls": CALLS}, Where("youlianyun", "bench", "bench", DAY))
        chunk = Chunk("youlianyun", "bench", DAY, DAY + timedelta(days=1), DAY)
        rows = float(load.store(chunk, {"calls": batches(data)})["calls"])
        load.commit()
    else:
        from cdrfetch.destinations.base import Chunk, Where
        from cdrfetch.destinations.delta import DeltaTables
        from cdrfetch.records import CALLS

        lake = DeltaTables(out)
        load = lake.open({"calls": CALLS}, Where("youlianyun", "bench", "bench", DAY))
        chunk = Chunk("youlianyun", "bench", DAY, DAY + timedelta(days=1), DAY)
        rows = float(load.store(chunk, {"calls": batches(data)})["calls"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": rows}


def child(name: str, data: Path, out: str, env: dict[str, str] | None = None) -> dict[str, float]:
    command = [sys.executable, __file__, "--case", name, "--data", str(data), "--out", out]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed: {done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def moto() -> tuple[subprocess.Popen[bytes], dict[str, str], str]:
    """moto_server on a free port, a bucket, and the AWS environment pointing at it."""
    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}  # fmt: skip
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
    s3.create_bucket(Bucket="bench-lake")
    return server, env, "s3://bench-lake/lake"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--case")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.data, args.out)))
        return
    work = Path(tempfile.mkdtemp(prefix="cdrfetch-bench-delta-"))
    try:
        data = work / "calls.arrow"
        generate(data, args.rows)
        results = {
            "parquet": child("parquet", data, str(work / "calls.parquet")),
            "duckdb copy to parquet": child("duckdb", data, str(work / "duck.parquet")),
            "delta first load": child("delta", data, str(work / "lake")),
            "delta re-run": child("delta", data, str(work / "lake")),
        }
        server, env, url = moto()
        try:
            results["parquet object to s3"] = child("objects", data, url.replace("/lake", "/raw/calls.parquet"), env)
            results["delta s3 first load"] = child("delta", data, url, env)
        finally:
            server.terminate()
            server.wait(timeout=10)
        base = results["parquet"]["seconds"]
        print(f"{args.rows:,} rows, one chunk")
        for name, result in results.items():
            print(f"{name:22} {result['seconds']:7.2f} s  x{result['seconds'] / base:5.1f}  "
                  f"peak RSS {result['rss_mib']:7.0f} MiB  rows stored {int(result['rows']):,}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
