"""Huawei CEC: parse a 1,000,000-row `_call` CSV and write normalized Parquet, against DuckDB.

Run: .venv/bin/python tests/bench/bench_huawei_cec_parse.py [rows [tz [repeats]]]   (1,000,000, Asia/Shanghai, 3)

Both sides do the same normalization (spec §6.1) of the same file in the same run: times read in
Asia/Shanghai and converted to UTC, start falling back to wait/ack begin, duration, direction,
record_id, nulls for empty cells and the `extra` JSON object without empty cells. DuckDB does it
in one `COPY (SELECT ...) TO 'x.parquet'`. The runs alternate (a noisy moment hits both sides
alike); prints the median wall and CPU times of each side, their ratios and our peak RSS growth.
"""

from __future__ import annotations

import csv
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cdrfetch import archive, records
from cdrfetch.providers.huawei_cec import columns as cols
from cdrfetch.providers.huawei_cec.parse import Context, parse_members
from cdrfetch.windows import zone

AK = "bench-ak"
TZ = "Asia/Shanghai"
IN_USE: list[int] = []


def write_csv(path: Path, rows: int) -> None:
    """A realistic export: header, answered / unanswered calls, multi-row calls, quoted cells."""
    r = random.Random(7)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\r\n")
        out.writerow(cols.CALL_NAMES)
        base = 1_700_000_000
        for i in range(rows):
            t = base + i * 3
            answered = r.random() < 0.8
            begin = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + 5)) if answered else ""
            end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + 5 + r.randint(1, 900))) if answered else ""
            wait = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
            out.writerow([
                AK, "acct-1", "1", str(100 + i % 50) if answered else "", f"{t}-{i % 10000:04d}",
                f"138{r.randrange(10**8):08d}", f"0755{r.randrange(10**7):07d}", wait, wait, begin, begin, begin, end,
                "2", str(100 + i % 50), r.choice(("0", "7", "6", "42", "99")), "16" if i % 3 == 2 else "",
                ("1", "2", "-1")[i % 3], "1", "1" if answered else "", 'x"1' if i % 1000 == 0 else "",
            ])  # fmt: skip


def ours(source: Path, target: Path) -> int:
    """The provider's parser (streamed blocks of BATCH_ROWS) into a Parquet writer."""
    ctx = Context(AK, zone(TZ), lambda message: None)
    rows = 0
    with pq.ParquetWriter(target, records.CALLS) as writer:
        for batch in parse_members([archive.Member("bench_call.csv", source)], ctx):
            writer.write_batch(batch.data)
            rows += batch.data.num_rows
            IN_USE.append(pa.total_allocated_bytes() >> 20)
    return rows


def _json_member(name: str) -> str:
    return f"CASE WHEN {name} <> '' THEN ',\"{name}\":' || to_json({name})::VARCHAR END"


def _time(expression: str) -> str:
    return f"timezone('{TZ}', try_strptime(NULLIF({expression}, ''), '%Y-%m-%d %H:%M:%S'))"


def duck(source: Path, target: Path) -> None:
    """The same normalization as one COPY ... TO in DuckDB."""
    extra = ", ".join(_json_member(name) for name in cols.CALL_EXTRA)
    developer = f"CASE WHEN developer <> '' AND developer <> '{AK}' THEN ',\"developer\":' || to_json(developer) END"
    directions = "CASE call_type WHEN '0' THEN 'inbound' WHEN '6' THEN 'internal' " + (
        "WHEN '7' THEN 'outbound' " + " ".join(f"WHEN '{c}' THEN 'outbound'" for c in range(40, 46))
    ) + " ELSE 'unknown' END"  # fmt: skip
    query = f"""
    COPY (
      WITH raw AS (
        SELECT *, {_time("call_begin")} AS b, {_time("call_end")} AS e,
          {_time("coalesce(NULLIF(wait_begin, ''), ack_begin)")} AS w
        FROM read_csv('{source}', header = true, all_varchar = true, delim = ',', quote = '"')
      )
      SELECT 'huawei-cec' AS provider, '{AK}' AS account, call_id || ':' || call_id_num AS record_id, call_id,
        coalesce(b, w) AS start_time, e AS end_time,
        CASE WHEN date_diff('second', b, e) >= 0 THEN date_diff('second', b, e) END AS duration_s,
        NULL::BIGINT AS billed_duration_s, NULLIF(caller_no, '') AS caller, NULLIF(callee_no, '') AS callee,
        {directions} AS direction, NULLIF(call_type, '') AS call_type, NULLIF(release_cause, '') AS status,
        NULL::DECIMAL(18, 6) AS cost, NULL::VARCHAR AS currency, NULL::VARCHAR AS country,
        NULL::VARCHAR AS recording_url,
        '{{' || substr(concat_ws('', {extra}, {developer}), 2) || '}}' AS extra
      FROM raw
    ) TO '{target}' (FORMAT parquet)
    """
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(query)


def agree(mine: Path, theirs: Path) -> bool:
    """Same row count, and the first and last 5,000 rows equal value for value."""
    ours_table, duck_table = pq.read_table(mine), pq.read_table(theirs)
    if ours_table.num_rows != duck_table.num_rows:
        return False
    duck_table = duck_table.cast(records.CALLS)  # DuckDB writes microsecond timestamps
    n = ours_table.num_rows
    return all(ours_table.slice(s, 5000).equals(duck_table.slice(s, 5000)) for s in (0, max(n - 5000, 0)))


def peak_mib() -> float:
    """Peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(action: object, *args: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of every thread of this process) of one call."""
    before, begin = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    action(*args)  # type: ignore[operator]
    wall, after = time.perf_counter() - begin, resource.getrusage(resource.RUSAGE_SELF)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    """Generate once, run both sides alternately, print the figures."""
    global TZ
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    TZ = sys.argv[2] if len(sys.argv) > 2 else TZ
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    mine: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-huawei-") as tmp:
        source = Path(tmp) / "export_call.csv"
        ours_file, duck_file = Path(tmp) / "ours.parquet", Path(tmp) / "duck.parquet"
        write_csv(source, rows)
        size = source.stat().st_size / 2**20
        before = peak_mib()
        mine.append(timed(ours, source, ours_file))  # first: its peak RSS is ours alone
        growth = peak_mib() - before
        written = pq.read_metadata(ours_file).num_rows
        theirs.append(timed(duck, source, duck_file))
        for _ in range(repeats - 1):
            mine.append(timed(ours, source, ours_file))
            theirs.append(timed(duck, source, duck_file))
        same = agree(ours_file, duck_file)
    wall, cpu = statistics.median(w for w, _ in mine), statistics.median(c for _, c in mine)
    duck_wall, duck_cpu = statistics.median(w for w, _ in theirs), statistics.median(c for _, c in theirs)
    print(f"rows {written:,} ({size:.0f} MiB CSV, tz {TZ}); outputs agree with DuckDB's: {same}")
    print(f"median of {repeats} alternated runs (wall / CPU of all threads)")
    print(f"cdrfetch huawei-cec parse -> parquet: {wall:.2f} s / {cpu:.2f} s")
    print(f"duckdb COPY (SELECT ...) TO parquet: {duck_wall:.2f} s / {duck_cpu:.2f} s")
    print(f"ratio cdrfetch / duckdb: {wall / duck_wall:.2f}x wall, {cpu / duck_cpu:.2f}x CPU (target <= 1.0x)")
    print(f"peak RSS growth during the first cdrfetch run: {growth:.0f} MiB")
    print(f"Arrow memory in use after each batch: {min(IN_USE)}-{max(IN_USE)} MiB (flat = streaming)")


if __name__ == "__main__":
    main()
