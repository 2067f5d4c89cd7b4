"""Bench: a 1,000,000-row Youlianyun bill file -> normalized Parquet, against DuckDB's COPY.

Run: .venv/bin/python tests/bench/bench_youlianyun_parse.py [ROWS]

The file comes from the emulator's own writer (generated in a child process, so its memory does
not hide ours). Ours: the provider's DayParser streamed into a pyarrow ParquetWriter. Baseline:
one DuckDB `COPY (SELECT ...) TO 'x.parquet'` doing the same normalization (trim, SHA-1
record_id with the occurrence index n, Asia/Shanghai -> UTC, end time, extra JSON).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

SID = "1784fd62ae354a1eca54f8b34e5a9baf"
APP = "950a97bce77b885b747536a1e3887465"
DAY = date(2015, 10, 12)
ROUNDS = 3


def generate(path: Path, rows: int) -> None:
    """Write the bill file with the emulator's row generator and writer (default layout)."""
    from cdrfetch.providers.youlianyun.emulator import files

    bill = files.day_rows(0, SID, APP, DAY, rows, rows)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.writelines(files.lines(bill, files.FileFormat()))


def rss_mb() -> float:
    """Current resident set size in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(source: Path, target: Path) -> tuple[float, int]:
    """Parse + write Parquet with the provider's parser; (seconds, rows)."""
    import pyarrow.parquet as pq

    from cdrfetch.providers.youlianyun.parse import DayParser
    from cdrfetch.records import CALLS
    from cdrfetch.windows import zone

    began = time.perf_counter()
    rows = 0
    parser = DayParser(SID, APP, zone("Asia/Shanghai"), None)
    with pq.ParquetWriter(target, CALLS) as writer:
        for batch in parser.parse(source, "bill.txt"):
            writer.write_batch(batch)
            rows += batch.num_rows
    return time.perf_counter() - began, rows


DUCKDB_SQL = """
COPY (
  WITH raw AS (
    SELECT row_number() OVER () AS line,
           trim(ClientId) AS c, trim(Callee) AS e, trim(startTime) AS s, trim(duration) AS d, trim("type") AS t
    FROM read_csv('{source}', delim=',', header=true, all_varchar=true)
  ), numbered AS (
    SELECT *, row_number() OVER (PARTITION BY c, e, s, d, t ORDER BY line) - 1 AS n,
           strptime(s, '%Y-%m-%d %H:%M:%S') AT TIME ZONE 'Asia/Shanghai' AS start_time
    FROM raw
  )
  SELECT 'youlianyun' AS provider, '{sid}' AS account,
         sha1(concat_ws('|', '{sid}', '{app}', c, e, s, d, t, n::VARCHAR)) AS record_id,
         sha1(concat_ws('|', '{sid}', '{app}', c, e, s, d, t, n::VARCHAR)) AS call_id,
         start_time, start_time + to_seconds(d::BIGINT) AS end_time, d::BIGINT AS duration_s,
         NULL::BIGINT AS billed_duration_s, nullif(c, '') AS caller, nullif(e, '') AS callee,
         'unknown' AS direction, nullif(t, '') AS call_type, NULL::VARCHAR AS status,
         NULL::DECIMAL(18, 6) AS cost, NULL::VARCHAR AS currency, NULL::VARCHAR AS country,
         NULL::VARCHAR AS recording_url,
         CASE t WHEN '0' THEN '{{"appId":"{app}","type_label":"direct"}}'
                WHEN '1' THEN '{{"appId":"{app}","type_label":"free"}}'
                WHEN '2' THEN '{{"appId":"{app}","type_label":"callback"}}'
                ELSE '{{"appId":"{app}"}}' END AS extra
  FROM numbered ORDER BY line
) TO '{target}' (FORMAT parquet)
"""


def duckdb_copy(source: Path, target: Path) -> float:
    """The same normalization as one DuckDB COPY; seconds."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    began = time.perf_counter()
    connection.execute(DUCKDB_SQL.format(source=source, target=target, sid=SID, app=APP))
    return time.perf_counter() - began


def check(ours_file: Path, duck_file: Path) -> None:
    """Both outputs hold the same record ids and start times (the baseline is a fair one)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    mine = pq.read_table(ours_file, columns=["record_id", "start_time"])
    theirs = pq.read_table(duck_file, columns=["record_id", "start_time"])
    same_ids = set(mine["record_id"].to_pylist()) == set(theirs["record_id"].to_pylist())
    same_times = pc.min(mine["start_time"]).as_py() == pc.min(theirs["start_time"]).as_py()
    print(f"outputs agree: record_id sets {same_ids}, earliest start {same_times}")


def main() -> None:
    """Generate, time both (best of ROUNDS, alternating), print the ratio and our peak RSS growth."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        source, mine_out, duck_out = Path(tmp) / "bill.txt", Path(tmp) / "ours.parquet", Path(tmp) / "duck.parquet"
        subprocess.run([sys.executable, __file__, "--generate", str(source), str(rows)], check=True)
        import duckdb  # noqa: F401  (imports are not part of either timing)
        import pyarrow.parquet  # noqa: F401

        import cdrfetch.providers.youlianyun.parse  # noqa: F401

        base = max(peak_mb(), rss_mb())
        mine, count = ours(source, mine_out)
        growth = peak_mb() - base
        mines, theirs = [mine], [duckdb_copy(source, duck_out)]
        for _ in range(ROUNDS - 1):
            mines.append(ours(source, mine_out)[0])
            theirs.append(duckdb_copy(source, duck_out))
        size = source.stat().st_size / 1e6
        print(f"file: {count:,} rows, {size:.1f} MB; best of {ROUNDS} runs each, alternating")
        print(
            f"cdrfetch parse+parquet: {min(mines):.2f}s   duckdb COPY: {min(theirs):.2f}s   "
            f"ratio: {min(mines) / min(theirs):.2f}x   (all runs: ours {_runs(mines)}; duckdb {_runs(theirs)})"
        )
        print(f"cdrfetch peak RSS growth during the first parse: {growth:.0f} MB (file is {size:.0f} MB)")
        check(mine_out, duck_out)


def _runs(times: list[float]) -> str:
    return " ".join(f"{t:.2f}" for t in times)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        generate(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
