"""Bench: 1M normalized rows merged into PostgreSQL through the destination, against a plain `psql \\copy`.

Usage: .venv/bin/python tests/bench/bench_postgres.py [--rows N] [--rounds K]

A throwaway cluster is started with tests/pg_server.py (initdb + pg_ctl, fsync off: the same for
every contender). N rows (default 1,000,000) of the calls schema are generated once with pyarrow
and kept as an Arrow IPC stream, the pipeline's spool format. Each contender runs in a child process,
timed from spawn to exit (medians of K rounds, default 3), its peak RSS from wait4's ru_maxrss (the
client's; the server's memory is the same server for all):

- destination, first load: `Postgres.open(...).store(chunk, batches)` into a fresh database: COPY into
  staging, INSERT ... ON CONFLICT into `calls` (PRIMARY KEY record_id), state in the same transaction;
- destination, re-run: the same store again, which inserts nothing;
- baseline: `psql -c "\\copy calls FROM 'rows.csv' (FORMAT csv)"` of the same rows, rendered to CSV
  beforehand (not timed), into an empty table with the same definition (primary key included);
- local Parquet: the same batches written with pyarrow.parquet.ParquetWriter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
if TYPE_CHECKING:
    from tests.pg_server import Cluster

CHILD = r"""
import sys
from datetime import datetime, timezone
import pyarrow as pa
from cdrfetch.destinations import Chunk, Named, Where
from cdrfetch.destinations.postgres import Postgres
from cdrfetch.records import CALLS

kind, source, target = sys.argv[1:4]
start, end = datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 2, 1, tzinfo=timezone.utc)
with pa.OSFile(source) as stream:  # read, not mapped: mapped pages would count as RSS
    batches = pa.ipc.open_stream(stream)
    if kind == "parquet":
        import pyarrow.parquet as pq
        with pq.ParquetWriter(target, CALLS) as writer:
            for batch in batches:
                writer.write_batch(batch)
    else:
        load = Postgres.from_named(Named("", target)).open({"calls": CALLS}, Where("bench", "a", "x", start))
        print(load.store(Chunk("bench", "a", start, end, start), {"calls": batches})["calls"])
        load.abort()
"""


def generate(rows: int, path: Path) -> None:
    """`rows` calls rows (distinct record ids, nulls and JSON extras) as an Arrow IPC stream."""
    import numpy as np
    import pyarrow as pa

    from cdrfetch.records import BATCH_ROWS, CALLS

    rng = np.random.default_rng(7)
    with pa.ipc.new_stream(str(path), CALLS) as writer:
        for first in range(0, rows, BATCH_ROWS):
            n = min(BATCH_ROWS, rows - first)
            index = np.arange(first, first + n)
            starts = 1_704_067_200_000 + index * 2_000
            durations = rng.integers(0, 3_600, n)
            ids = pa.array([f"{i:040x}" for i in index])
            columns = {
                "provider": pa.array(["bench"] * n), "account": pa.array(["a"] * n), "record_id": ids, "call_id": ids,
                "start_time": pa.array(starts, pa.timestamp("ms", tz="UTC")),
                "end_time": pa.array(starts + durations * 1000, pa.timestamp("ms", tz="UTC")),
                "duration_s": pa.array(durations), "billed_duration_s": pa.array(durations, mask=durations < 10),
                "caller": pa.array([f"+8613{i % 10**9:09d}" for i in index]),
                "callee": pa.array([f"+8614{(i * 7) % 10**9:09d}" for i in index]),
                "direction": pa.array(np.where(index % 2 == 0, "outbound", "inbound")),
                "call_type": pa.array(["1"] * n), "status": pa.array(["200"] * n),
                "cost": pa.array(durations * 0.01).cast(pa.decimal128(18, 6)), "currency": pa.array(["CNY"] * n),
                "country": pa.array([None] * n, pa.string()), "recording_url": pa.array([None] * n, pa.string()),
                "extra": pa.array([f'{{"appId":"app","seq":{i}}}' for i in index]),
            }  # fmt: skip
            writer.write_batch(pa.RecordBatch.from_pydict(columns, schema=CALLS))


def render_csv(source: Path, target: Path) -> None:
    """The same rows as the destination renders them (the baseline's input)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with pa.memory_map(str(source)) as stream:
        batches = pa.ipc.open_stream(stream)
        options = pacsv.WriteOptions(include_header=False)
        with pacsv.CSVWriter(str(target), batches.schema, write_options=options) as writer:
            for batch in batches:
                writer.write_batch(batch)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Seconds from spawn to exit, the child's peak RSS (MiB), its stdout."""
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    out, err = child.stdout.read() if child.stdout else "", child.stderr.read() if child.stderr else ""
    if status != 0:
        raise RuntimeError(f"{command[:3]} failed: {err}")
    return seconds, usage.ru_maxrss / 1024, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)  # the child that writes the rows
    args = parser.parse_args()
    if args.generate:
        generate(args.rows, Path(args.generate) / "rows.arrow")
        render_csv(Path(args.generate) / "rows.arrow", Path(args.generate) / "rows.csv")
        return
    from tests.pg_server import start_cluster, stop_cluster

    work = Path(tempfile.mkdtemp(prefix="cdrfetch-bench-pg-"))
    spool, csv = work / "rows.arrow", work / "rows.csv"
    # Generated in a child: a forked child's ru_maxrss starts at its parent's RSS, so this one stays small
    timed([sys.executable, __file__, "--rows", str(args.rows), "--generate", str(work)])
    floor = timed(["/bin/true"])[1]
    cluster = start_cluster()
    env = {**os.environ, "PGPASSWORD": cluster.password}
    results: Results = {"first": [], "rerun": [], "copy": [], "parquet": []}
    try:
        for round_ in range(args.rounds):
            results_of_round(cluster, round_, spool, csv, work, env, results, args.rows)
    finally:
        stop_cluster(cluster)
        shutil.rmtree(work, ignore_errors=True)
    report(results, args.rows)
    print(f"  (peak RSS is each child's ru_maxrss; a child spawned by this bench starts at {floor:.1f} MiB)")


Results = dict[str, list[tuple[float, float]]]  # contender -> (seconds, peak RSS MiB) per round


def results_of_round(
    cluster: Cluster, round_: int, spool: Path, csv: Path, work: Path, env: dict[str, str], results: Results, rows: int
) -> None:
    """One round of every contender, each on a fresh database."""
    from cdrfetch.destinations.postgres.schema import _column
    from cdrfetch.records import CALLS

    ours, theirs = f"ours_{round_}", f"copy_{round_}"
    with cluster.connect(autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {ours}")
        conn.execute(f"CREATE DATABASE {theirs}")
    with cluster.connect(theirs, autocommit=True) as conn:  # the destination's own table definition
        columns = ", ".join(_column(field).as_string(conn) for field in CALLS)
        conn.execute(f"CREATE TABLE calls ({columns}, PRIMARY KEY (record_id))")
    child = [sys.executable, "-c", CHILD]
    for name, kind, target in (("first", "pg", cluster.url(ours)), ("rerun", "pg", cluster.url(ours))):
        seconds, rss, inserted = timed([*child, kind, str(spool), target], env)
        assert int(inserted) == (rows if name == "first" else 0), inserted
        results[name].append((seconds, rss))
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", cluster.url(theirs), "-c",
            f"\\copy calls FROM '{csv}' (FORMAT csv)"]  # fmt: skip
    results["copy"].append(timed(psql, env)[:2])
    results["parquet"].append(timed([*child, "parquet", str(spool), str(work / "out.parquet")])[:2])
    with cluster.connect(theirs) as conn:
        assert conn.execute("SELECT count(*) FROM calls").fetchone() == (rows,)


def report(results: Results, rows: int) -> None:
    median = {name: statistics.median(s for s, _ in runs) for name, runs in results.items()}
    peak = {name: max(r for _, r in runs) for name, runs in results.items()}
    labels = {"first": "destination, first load", "rerun": "destination, re-run (inserts 0)",
              "copy": "psql \\copy into an empty table", "parquet": "local Parquet write"}  # fmt: skip
    print(f"{rows:,} calls rows, median of {len(results['first'])} rounds")
    for name, label in labels.items():
        print(f"  {label:34s} {median[name]:7.2f} s  {median[name] / median['copy']:5.2f}x copy  "
              f"peak RSS {peak[name]:6.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
