"""Bench: a whole `cdrfetch <provider> pull` of a large export against fetch + unzip + one DuckDB COPY.

Usage: .venv/bin/python tests/bench/bench_e2e.py [--rows N] [--rounds K] [--providers a,b]
       [--destinations parquet,csv,jsonl,json,delta,delta-s3,s3,postgres]

Per archive provider (youlianyun, huawei-cec, polycom) the provider's emulator serves one export
of N rows (default 1,000,000) in the provider's real format: a zip built with the emulator's own
writers (Youlianyun, Polycom) or in the `_call` CSV layout of bench_huawei_cec_parse.py. Each
export is generated once and cached under ~/.cache/cdrfetch-bench/ (key: provider, rows, format
version; $CDRFETCH_BENCH_CACHE moves it), so the emulator's own generation is never timed: a
subclass of the emulator answers with the cached bytes, its protocol and signature checks intact.
The emulator runs in a child process, so neither side shares an interpreter with it.

Contender: `python -m cdrfetch <provider> pull -c <config> --from .. --to .. -o out.parquet -q`, a
user's run, secrets from CDRFETCH_<PROVIDER>_<KEY>. Baseline: a child process that GETs the same
bytes with `requests` (streamed to a file), unpacks them with zipfile and runs the parse bench's
DuckDB `COPY (SELECT ...) TO 'x.parquet'`. Both are timed from spawn to exit, alternately, for K
rounds (default 3); medians are compared. Peak RSS is of each side's whole process tree, polled
from /proc every 20 ms (and never below the child's own ru_maxrss). Afterwards both outputs are
compared: row count, the multiset of (call_id, start_time, duration_s, caller, callee), record_ids.

--destinations (default `parquet`: the above alone) runs the same pull into other destinations too,
each round into a fresh target, the way a user points `-o` at it: `csv`, `jsonl`, `json` (`-o out.csv`,
...), `delta` (`-o DIR --format delta`), `delta-s3` (`-o s3://bucket/prefix/ --format delta`), `s3`
(`-o s3://bucket/prefix/calls.parquet`: the file destination uploading its Parquet file) and
`postgres` (`-o postgresql://user@127.0.0.1:port/db`, a fresh database per round, the password in
PGPASSWORD). The S3 ones write to moto's S3 server (bench_delta.moto: a subprocess, credentials and
endpoint in AWS_*), postgres to a throwaway cluster (tests/pg_server.start_cluster); a server is
started only when a destination needs it, once, and stopped at the end. The local Parquet pull always
runs as the reference: each destination's median wall and CPU seconds and peak RSS are reported with
their ratios to it (the servers' own processes are not in the pull's tree: their RSS is not counted).
Each round's output is read back in a child process (the calls table's record_ids, with DuckDB,
deltalake, boto3 or psycopg) and must hold exactly the rows of that round's Parquet file; a
destination that fails or writes other rows is reported as such, and the others go on.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))  # the parse benches are modules beside this one, not a package
sys.path.insert(1, str(ROOT))  # tests.pg_server, the PostgreSQL cluster of the tests

CACHE = Path(os.environ.get("CDRFETCH_BENCH_CACHE", "~/.cache/cdrfetch-bench")).expanduser()
FORMAT_VERSION = 1  # part of the cache key: bump it whenever a generator below changes its output
PROVIDERS = ("youlianyun", "huawei-cec", "polycom")
TARGET = 1.25
EXPORT_PATH = "/bench/export"  # the baseline's unauthenticated route to the same bytes
SAMPLE_SECONDS = 0.02
DESTINATIONS = ("parquet", "csv", "jsonl", "json", "delta", "delta-s3", "s3", "postgres")
TEXT = ("csv", "jsonl", "json")
ON_S3 = ("delta-s3", "s3")
PG_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE", "PGSSLMODE", "PGOPTIONS")

YLY_DAY = date(2015, 10, 12)  # the parse bench's day (a Shanghai day long past: billList serves it)
HUAWEI_BASE = 1_700_006_400  # 2023-11-15 00:00:00 written as naive text, read in Asia/Shanghai
HUAWEI_SPAN = 86_000  # seconds the rows spread over: one day, so the export is one queryBillData job
HUAWEI_SK = "bench-sk"
HUAWEI_STAMP = "20231116010203000123"  # the <yyyyMMddHHmmss><ms><nnn> stamp CC-FS names members with
POLYCOM_DAY = datetime(2024, 3, 9, tzinfo=timezone.utc)  # the parse bench's start; one DMA export chunk


@dataclass(frozen=True)
class Spec:
    """What the bench knows of one provider: its export's window and calls member."""

    name: str
    window: tuple[str, str]  # --from / --to of the pull
    member: str  # the calls member inside the export zip (what the baseline's COPY reads)


SPECS = {
    "youlianyun": Spec("youlianyun", ("2015-10-12T00:00:00+08:00", "2015-10-13T00:00:00+08:00"), "bill.txt"),
    "huawei-cec": Spec(
        "huawei-cec", ("2023-11-15T00:00:00+08:00", "2023-11-16T00:00:00+08:00"), f"{HUAWEI_STAMP}_call.csv"
    ),
    "polycom": Spec("polycom", ("2024-03-09T00:00:00+00:00", "2024-03-10T00:00:00+00:00"), "calls.csv"),
}


# --- the cached exports ---------------------------------------------------------------------------


def cached_export(provider: str, rows: int) -> Path:
    """The export zip of `rows` rows, generated in a child process the first time it is asked for."""
    path = CACHE / f"{provider}-{rows}-v{FORMAT_VERSION}.zip"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")  # renamed only when complete: no torn cache
        began = time.perf_counter()
        print(f"{provider}: generating a {rows:,}-row export into {path} (once) ...", flush=True)
        subprocess.run([sys.executable, __file__, "--generate", provider, str(rows), str(partial)], check=True)
        partial.rename(path)
        print(f"{provider}: generated in {time.perf_counter() - began:.0f}s", flush=True)
    return path


def _member(bundle: zipfile.ZipFile, name: str, when: tuple[int, int, int, int, int, int]) -> Any:
    """A deflated member opened for streaming (zip64 allowed: a 5M-row member can pass 4 GiB)."""
    info = zipfile.ZipInfo(name, when)
    info.compress_type = zipfile.ZIP_DEFLATED
    return bundle.open(info, "w", force_zip64=True)


def generate_youlianyun(path: Path, rows: int) -> None:
    """The emulator's rows and writer (default layout, zip container), as its download serves them."""
    from cdrfetch.providers.youlianyun.emulator import APP_ID, SID, files

    bill = files.day_rows(0, SID, APP_ID, YLY_DAY, rows, rows)
    path.write_bytes(files.render(bill, files.FileFormat(container="zip")))


def generate_huawei(path: Path, rows: int) -> None:
    """bench_huawei_cec_parse.write_csv's rows with their times packed into one day, zipped as CC-FS does.

    The parse bench spaces rows 3 s apart (35 days for 1M rows, a dozen 3-day jobs); one day keeps
    the export one job whose zip the emulator can answer with. call_id stays unique: rows sharing a
    second are consecutive, so their `i % 10000` differ.
    """
    import bench_huawei_cec_parse as parse_bench

    from cdrfetch.providers.huawei_cec.emulator import export

    r = random.Random(7)
    with zipfile.ZipFile(path, "w") as bundle, _member(bundle, SPECS["huawei-cec"].member, export.ZIP_TIME) as raw:
        handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        out = csv.writer(handle, lineterminator="\r\n")
        out.writerow(export.HEADER_CALL)
        for i in range(rows):
            t = HUAWEI_BASE + i * HUAWEI_SPAN // rows
            answered = r.random() < 0.8
            begin = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + 5)) if answered else ""
            end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t + 5 + r.randint(1, 900))) if answered else ""
            wait = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
            out.writerow([
                parse_bench.AK, "acct-1", "1", str(100 + i % 50) if answered else "", f"{t}-{i % 10000:04d}",
                f"138{r.randrange(10**8):08d}", f"0755{r.randrange(10**7):07d}", wait, wait, begin, begin, begin, end,
                "2", str(100 + i % 50), r.choice(("0", "7", "6", "42", "99")), "16" if i % 3 == 2 else "",
                ("1", "2", "-1")[i % 3], "1", "1" if answered else "", 'x"1' if i % 1000 == 0 else "",
            ])  # fmt: skip
        handle.flush()
        handle.detach()  # the member is closed by its own context manager


def generate_polycom(path: Path, rows: int) -> None:
    """The emulator's hourly records and CSV rendering, densified so `rows` calls fit one day's export.

    Rows go out in start order as the DMA writes them: after hour h a call starting before h+1 is
    final (later hours only start later), the rest (second segments) is carried over. The
    conferences member is present but empty, so both sides normalize the same calls only.
    """
    from cdrfetch.providers.polycom.emulator import data

    tz = ZoneInfo("America/New_York")
    end = POLYCOM_DAY + timedelta(days=1)
    per_hour = -(-rows * 10 // (24 * 12))  # ~1.25 calls per generated index: 24 h give ~1.04 x rows
    carried: list[data.Call] = []
    written = 0
    with zipfile.ZipFile(path, "w") as bundle:
        with _member(bundle, "calls.csv", data.ZIP_TIME) as raw:
            raw.write(data.csv_text(data.CALL_HEADER, []).encode("utf-8"))
            for hour in range(24):
                began = POLYCOM_DAY + timedelta(hours=hour)
                calls, _ = data.hour_records(0, "bench", began, per_hour)
                pool = sorted(carried + [c for c in calls if c.start < end], key=lambda c: (c.start, c.uuid))
                last = hour == 23
                ready = [c for c in pool if last or c.start < began + timedelta(hours=1)]
                carried = [c for c in pool if not last and c.start >= began + timedelta(hours=1)]
                ready = ready[: rows - written]
                raw.write(data.csv_text(None, [data.call_row(c, tz) for c in ready]).encode("utf-8"))
                written += len(ready)
                if written >= rows:
                    break
        with _member(bundle, "conferences.csv", data.ZIP_TIME) as raw:
            raw.write(data.csv_text(data.CONF_HEADER, []).encode("utf-8"))
        with _member(bundle, "counts.txt", data.ZIP_TIME) as raw:
            raw.write(data.counts_line(written, 0, ()).encode("utf-8"))


GENERATORS: dict[str, Callable[[Path, int], None]] = {
    "youlianyun": generate_youlianyun,
    "huawei-cec": generate_huawei,
    "polycom": generate_polycom,
}


# --- the emulators, answering with the cached export ----------------------------------------------


def emulator_for(provider: str, blob: bytes, rows: int) -> Any:
    """The provider's emulator, its export-building step replaced by `blob`, plus the baseline's route."""
    from cdrfetch.sandbox.server import Reply, Route

    def export_reply(request: Any, match: Any) -> Any:
        return Reply(200, blob, {"Content-Type": "application/zip"})

    bench_route = Route("GET", re.compile(re.escape(EXPORT_PATH)), export_reply)
    if provider == "youlianyun":
        return _youlianyun(blob, bench_route)
    if provider == "huawei-cec":
        return _huawei(blob, bench_route)
    return _polycom(blob, rows, bench_route)


def _youlianyun(blob: bytes, bench_route: Any) -> Any:
    import hashlib
    from urllib.parse import quote

    from cdrfetch.providers.youlianyun.emulator import APP_ID, SID, Issued, YoulianyunEmulator, files

    token, digest = hashlib.md5(blob).hexdigest(), hashlib.sha256(blob).hexdigest()  # once, not per billList
    placeholder = files.BillRow("", "", datetime(2015, 10, 12), 0, "0")

    class Cached(YoulianyunEmulator):
        """billList and the file server as they are; the export day's file is the cached one."""

        def routes(self) -> list[Any]:
            return [bench_route, *super().routes()]

        def rows(self, day: date, sid: str = SID, app_id: str = APP_ID) -> list[files.BillRow]:
            # one stand-in row: _success then issues exactly one link, without generating the day
            return [placeholder] if day == YLY_DAY else super().rows(day, sid, app_id)

        def _issue(self, request: Any, sid: str, app_id: str, day: date, rows: list[files.BillRow]) -> dict[str, str]:
            if day != YLY_DAY:
                return super()._issue(request, sid, app_id, day, rows)
            opaque = files.file_name(sid, app_id, day, digest)
            with self._lock:
                self.issued[opaque] = Issued(blob, token, "zip")
            url = f"http://{request.header('host')}/fileserver/file?fileName={quote(opaque, safe='')}"
            return {"downUrl": url, "token": token}

    return Cached(container="zip")


def _huawei(blob: bytes, bench_route: Any) -> Any:
    import bench_huawei_cec_parse as parse_bench

    from cdrfetch.providers.huawei_cec.emulator import HuaweiCecEmulator
    from cdrfetch.providers.huawei_cec.emulator.replies import OCTET
    from cdrfetch.sandbox.server import Reply

    class Cached(HuaweiCecEmulator):
        """Auth-v2, queryBillData and the download polling as they are; a ready job's zip is the cached one."""

        def routes(self) -> list[Any]:
            return [bench_route, *super().routes()]

        def _serve(self, job: Any) -> Any:
            return Reply(200, blob, {"Content-Type": OCTET})

    # the export is ready at once: a wait here would time the emulator's pretend build, not the pull
    return Cached(credentials={parse_bench.AK: HUAWEI_SK}, data_tz=parse_bench.TZ, ready_after=0.0, ready_after_polls=0)


def _polycom(blob: bytes, rows: int, bench_route: Any) -> Any:
    from cdrfetch.providers.polycom.emulator import PolycomEmulator

    class Cached(PolycomEmulator):
        """Basic auth, generate -> status -> download as they are; the export's zip is the cached one."""

        def routes(self) -> list[Any]:
            return [bench_route, *super().routes()]

        def _zip(self, export: Any) -> tuple[bytes, int]:
            return blob, rows

    return Cached(phase_seconds=0.0)  # no pretend build phases (see _huawei)


def serve(provider: str, rows: int, path: Path) -> None:
    """Child process: run the emulator until stdin closes; print its URL and client profile first."""
    from cdrfetch.sandbox.server import SandboxServer

    emulator = emulator_for(provider, path.read_bytes(), rows)
    with SandboxServer(emulator) as server:
        print(json.dumps({"url": server.url, "profile": emulator.profile(server.url)}), flush=True)
        sys.stdin.read()


# --- the two sides --------------------------------------------------------------------------------


def baseline(url: str, workdir: Path, sql_file: Path) -> None:
    """Child process: stream the export to a file, unzip it, run the COPY. Only what it needs is imported."""
    import duckdb
    import requests

    archive = workdir / "export.zip"
    with requests.get(url, stream=True, timeout=300) as response, open(archive, "wb") as out:
        response.raise_for_status()
        for block in response.iter_content(1 << 20):
            out.write(block)
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(workdir / "unpacked")
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(sql_file.read_text(encoding="utf-8"))


def baseline_sql(provider: str, source: Path, target: Path) -> str:
    """The parse bench's normalization of `source` into `target`, as SQL text."""
    if provider == "youlianyun":
        import bench_youlianyun_parse as yly

        return yly.DUCKDB_SQL.format(source=source, target=target, sid=yly.SID, app=yly.APP)
    if provider == "polycom":
        import bench_polycom as poly

        # the pull's account is the DMA host name, here the emulator's loopback address
        query = poly.DUCK.replace("{src}", str(source)).replace("{dst}", str(target))
        return query.replace("'dma.example.com'", "'127.0.0.1'")
    return _captured_huawei_sql(source, target)


def _captured_huawei_sql(source: Path, target: Path) -> str:
    """bench_huawei_cec_parse.duck builds and runs its query in one go: run it on a recorder instead."""
    import bench_huawei_cec_parse as parse_bench

    queries: list[str] = []

    class Recorder:
        def __enter__(self) -> Recorder:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def execute(self, query: str) -> None:
            queries.append(query)

    real = parse_bench.duckdb
    parse_bench.duckdb = SimpleNamespace(connect=Recorder)
    try:
        parse_bench.duck(source, target)
    finally:
        parse_bench.duckdb = real
    return queries[-1]


def contender_config(provider: str, profile: dict[str, Any], directory: Path) -> tuple[Path, dict[str, str]]:
    """A chmod-600 config file with the non-secret settings, and the env vars carrying the secrets."""
    import yaml

    from cdrfetch import providers
    from cdrfetch.config import env_name

    secrets = {s.name for s in providers.load(provider).all_settings() if s.secret}
    plain = {k: v for k, v in profile.items() if k not in secrets}
    if provider == "huawei-cec":
        plain.update(data_type="call", poll_interval=0.01)  # the export holds calls only and is ready at once
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump({"profiles": {"default": {provider: plain}}}), encoding="utf-8")
    path.chmod(0o600)
    env = {env_name(provider, k): str(v) for k, v in profile.items() if k in secrets}
    return path, env


# --- measuring ------------------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid -> ppid of every process (this kernel has no /proc/<pid>/task/<tid>/children)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            found[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ')'
    return found


def tree_rss_kib(root: int) -> int:
    """VmRSS summed over `root` and all its descendants."""
    parents = _parents()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class Run:
    seconds: float
    peak_mib: float
    cpu_s: float = 0.0  # user + system time of the process: steadier than wall time on a shared machine
    code: int = 0
    stderr: str = ""


def timed_run(command: list[str], env: dict[str, str] | None = None) -> Run:
    """`measured`, for a command that must succeed."""
    run = measured(command, env)
    if run.code != 0:
        raise SystemExit(f"{' '.join(command)}: exit {run.code}\n{run.stderr}")
    return run


def measured(command: list[str], env: dict[str, str] | None = None, also: Callable[[], None] | None = None) -> Run:
    """Spawn, poll the tree's RSS until exit (and call `also` at each poll, for another measurement),
    reap with wait4 (its ru_maxrss covers a peak between polls)."""
    began = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = [0], threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kib(child.pid))
            if also is not None:
                also()
            done.wait(SAMPLE_SECONDS)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    stderr = child.stderr.read() if child.stderr else b""  # drained while it runs: a full pipe would block it
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    done.set()
    poller.join()
    cpu = usage.ru_utime + usage.ru_stime
    code, text = os.waitstatus_to_exitcode(status), stderr.decode(errors="replace")
    return Run(seconds, max(peak[0], usage.ru_maxrss) / 1024, cpu, code, text)


def compared(mine: Path, theirs: Path) -> str:
    """`compare`, run in a child process: its DuckDB would raise the floor of every later run's ru_maxrss."""
    command = [sys.executable, __file__, "--compare", str(mine), str(theirs)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def compare(mine: Path, theirs: Path) -> str:
    """Row counts, the multiset of a few columns both ways, and how many record_ids only one side has."""
    import duckdb

    connection = duckdb.connect()

    def count(query: str) -> int:
        found = connection.execute(query).fetchone()
        return int(found[0]) if found else 0

    def only(a: Path, b: Path, cols: str) -> int:
        return count(f"SELECT count(*) FROM (SELECT {cols} FROM '{a}' EXCEPT ALL SELECT {cols} FROM '{b}')")

    rows = [count(f"SELECT count(*) FROM '{path}'") for path in (mine, theirs)]
    # call_id rather than record_id: the Polycom baseline spells a whole-second start ".000Z" in its ids
    cols = "call_id, epoch_ms(start_time), duration_s, caller, callee"
    differ = [only(mine, theirs, cols), only(theirs, mine, cols)]
    ids = only(mine, theirs, "record_id")
    same = rows[0] == rows[1] and differ == [0, 0]
    return (
        f"rows cdrfetch {rows[0]:,} / baseline {rows[1]:,}; (call_id, start, duration, caller, callee) only in "
        f"cdrfetch {differ[0]:,}, only in baseline {differ[1]:,} -> {'agree' if same else 'DIFFER'}; "
        f"record_ids only in cdrfetch: {ids:,}"
    )


# --- the other destinations -----------------------------------------------------------------------
# The bench's own process stays small: a child spawned from it starts with its ru_maxrss (Linux
# records the parent's high-water RSS at exec), so reading outputs back, which loads DuckDB,
# deltalake or boto3 and a million record_ids, happens in a child of its own (`--target`).


@dataclass
class Servers:
    """The servers the chosen destinations need, started once for the whole run."""

    s3_env: dict[str, str] = field(default_factory=dict)  # AWS_* pointing at moto's S3 server
    bucket: str = ""
    cluster: Any = None  # tests.pg_server.Cluster
    failed: dict[str, str] = field(default_factory=dict)  # destination -> why its server is missing


@contextlib.contextmanager
def servers(chosen: list[str]) -> Iterator[Servers]:
    """moto's S3 server when an S3 destination is chosen, a PostgreSQL cluster for postgres; stopped at the end."""
    started, moto_server = Servers(), None
    try:
        if set(ON_S3) & set(chosen):
            try:
                from bench_delta import moto

                moto_server, env, url = moto()
                started.s3_env = {k: v for k, v in env.items() if k.startswith("AWS_")}
                started.bucket = url.split("/")[2]
            except Exception as exc:
                started.failed.update(dict.fromkeys(ON_S3, f"moto S3 server: {type(exc).__name__}: {exc}"))
        if "postgres" in chosen:
            try:
                from tests.pg_server import start_cluster

                started.cluster = start_cluster()
            except Exception as exc:
                started.failed["postgres"] = f"PostgreSQL cluster: {type(exc).__name__}: {exc}"
        yield started
    finally:
        if started.cluster is not None:
            from tests.pg_server import stop_cluster

            stop_cluster(started.cluster)
        if moto_server is not None:
            moto_server.terminate()
            moto_server.wait(timeout=30)


@dataclass
class Target:
    """One destination's fresh target for one round: where it is, the pull's -o arguments and env."""

    kind: str
    where: str  # a file or directory, an s3:// URL or a postgresql:// URL
    args: list[str]
    env: dict[str, str]

    def io(self, action: str, parquet: Path | None = None) -> str:
        """Create, check or drop the target in a child process (see above); its stdout."""
        command = [sys.executable, __file__, "--target", action, self.kind, self.where, str(parquet or "")]
        done = subprocess.run(command, cwd=ROOT, env={**os.environ, **self.env}, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise RuntimeError(f"{action} {self.where}: {lines[-1] if lines else f'exit {done.returncode}'}")
        return done.stdout

    def drop(self) -> None:
        if self.kind in ("delta", *TEXT):
            shutil.rmtree(Path(self.where).parent if self.kind in TEXT else self.where, ignore_errors=True)
        else:
            self.io("drop")


def target(kind: str, up: Servers, scratch: Path, label: str) -> Target:
    """Where round `label` of `kind` writes: a new file, directory, prefix or database."""
    if kind in TEXT:
        path = scratch / f"{kind}-{label}" / f"out.{kind}"
        return Target(kind, str(path), ["-o", str(path)], {})
    if kind == "delta":
        directory = str(scratch / f"delta-{label}")
        return Target(kind, directory, ["-o", directory, "--format", "delta"], {})
    if kind == "delta-s3":
        url = f"s3://{up.bucket}/e2e/{label}/delta/"
        return Target(kind, url, ["-o", url, "--format", "delta"], up.s3_env)
    if kind == "s3":
        url = f"s3://{up.bucket}/e2e/{label}/objects/calls.parquet"
        return Target(kind, url, ["-o", url], up.s3_env)
    url = up.cluster.url(f"e2e_{uuid.uuid4().hex[:12]}")
    # libpq's own password variable, as a user's environment would have it, and no ~/.pgpass
    made = Target(kind, url, ["-o", url], {"PGPASSWORD": up.cluster.password, "PGPASSFILE": str(scratch / "none")})
    made.io("create")
    return made


def target_io(action: str, kind: str, where: str, parquet: str) -> None:
    """Child process: create a database, drop an S3 prefix or a database, or check what a pull wrote.

    check prints JSON: whether the calls table holds exactly the record_ids of `parquet` (those are
    distinct), and a line saying how many rows it holds.
    """
    if kind == "postgres":
        import psycopg

        server, database = where.rsplit("/", 1)
        if action in ("create", "drop"):
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                verb = "CREATE DATABASE" if action == "create" else "DROP DATABASE IF EXISTS"
                conn.execute(f'{verb} "{database}"' + (" WITH (FORCE)" if action == "drop" else ""))
            return
    elif kind in ON_S3 and action == "drop":
        client, bucket, key = _s3(where)
        prefix = key.rsplit("/", 1)[0] + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        return
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    expected = pq.read_table(parquet, columns=["record_id"])["record_id"].combine_chunks()
    written = pa.chunked_array([_written_ids(kind, where)], pa.string()).combine_chunks()
    found = pc.sum(pc.is_in(expected, value_set=written)).as_py() or 0
    same = len(written) == len(expected) == found > 0
    text = f"{len(written):,} rows"
    if not same:
        text += f", {len(expected) - found:,} of the Parquet file's {len(expected):,} missing: DIFFER"
    print(json.dumps({"same": same, "text": text, "parquet_rows": len(expected)}))


def _written_ids(kind: str, where: str) -> Any:
    """The record_ids of the calls table a pull wrote into `where`."""
    import pyarrow as pa

    if kind in TEXT:
        import duckdb

        if kind == "csv":
            source = f"read_csv('{where}', header = true, all_varchar = true)"
        else:
            layout = "newline_delimited" if kind == "jsonl" else "array"
            source = f"read_json('{where}', format = '{layout}', columns = {{'record_id': 'VARCHAR'}})"
        return duckdb.connect().sql(f"SELECT record_id FROM {source}").to_arrow_table()["record_id"].combine_chunks()
    if kind in ("delta", "delta-s3"):
        from deltalake import DeltaTable

        options = {k: v for k, v in os.environ.items() if k.startswith("AWS_")} if kind == "delta-s3" else {}
        table = DeltaTable(where.rstrip("/") + "/calls", storage_options=options)
        return table.to_pyarrow_dataset().to_table(columns=["record_id"])["record_id"].combine_chunks()
    if kind == "s3":
        import pyarrow.parquet as pq

        client, bucket, key = _s3(where)
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return pq.read_table(pa.BufferReader(body), columns=["record_id"])["record_id"].combine_chunks()
    import psycopg

    with psycopg.connect(where) as conn:
        return pa.array([row[0] for row in conn.execute("SELECT record_id FROM calls")], pa.string())


def _s3(url: str) -> tuple[Any, str, str]:
    """A boto3 client of the S3 server in AWS_*, and the bucket and key of `url`."""
    import boto3

    bucket, key = url.split("://", 1)[1].split("/", 1)
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]), bucket, key


@dataclass
class Side:
    """One destination's runs across the rounds."""

    runs: list[Run] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    good: bool = True
    error: str = ""


def other_round(kind: str, up: Servers, scratch: Path, label: str, pull: list[str], env: dict[str, str],
                parquet: Path, side: Side) -> int | None:  # fmt: skip
    """One pull into a fresh target of `kind`, timed, then checked and removed; a failure is kept in `side`.

    Returns the row count of the round's Parquet file, as the check read it (None when it did not run)."""
    made: Target | None = None
    try:
        made = target(kind, up, scratch, label)
        run_env = {k: v for k, v in env.items() if kind != "postgres" or k not in PG_VARIABLES}
        run = measured([*pull, *made.args], {**run_env, **made.env})
        if run.code != 0:
            lines = run.stderr.strip().splitlines()
            raise RuntimeError(f"exit {run.code}: {' | '.join(lines[-3:]) if lines else '(no stderr)'}")
        checked = json.loads(made.io("check", parquet))
        side.runs.append(run)
        side.checked.append(checked["text"])
        side.good = side.good and checked["same"]
        return int(checked["parquet_rows"])
    except Exception as exc:
        side.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        print(f"  {kind}: FAILED ({side.error})", flush=True)
        return None
    finally:
        if made is not None:
            try:
                made.drop()
            except Exception as exc:
                print(f"  {kind}: could not remove {made.where}: {exc}", flush=True)


def destination_table(mine: list[Run], parquet_rows: int | None, others: dict[str, Side], rounds: int) -> list[str]:
    """One line per destination: medians, peak RSS, ratios to the local Parquet pull, rows read back."""
    wall, cpu = statistics.median(r.seconds for r in mine), statistics.median(r.cpu_s for r in mine)
    rows = f"{parquet_rows:,} rows " if parquet_rows is not None else ""
    lines = [
        f"  destinations (median of {rounds} rounds; x = ratio to the local Parquet pull of the same rounds):",
        f"    {'destination':11} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'x wall':>7} {'x cpu':>7}  rows verified",
        f"    {'parquet':11} {wall:8.2f} {cpu:8.2f} {max(r.peak_mib for r in mine):9.0f} {1:7.2f} {1:7.2f}  "
        f"{rows}(compared with the baseline above)",
    ]
    for kind, side in others.items():
        if side.runs:
            w, c = statistics.median(r.seconds for r in side.runs), statistics.median(r.cpu_s for r in side.runs)
            peak = max(r.peak_mib for r in side.runs)
            checked = "; ".join(dict.fromkeys(side.checked)) + ("" if side.good else " (MISMATCH)")
            lines.append(f"    {kind:11} {w:8.2f} {c:8.2f} {peak:9.0f} {w / wall:7.2f} {c / cpu:7.2f}  {checked}")
        if side.error:
            done = f" after {len(side.runs)} round(s)" if side.runs else ""
            lines.append(f"    {kind:11} FAILED{done}: {side.error}")
    return lines


# --- the run --------------------------------------------------------------------------------------


def bench(provider: str, rows: int, rounds: int, kinds: list[str], up: Servers) -> str:
    """Serve the cached export, alternate the two sides `rounds` times, return the report lines."""
    spec = SPECS[provider]
    export = cached_export(provider, rows)
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", provider, str(rows), str(export)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        hello = json.loads(server.stdout.readline() if server.stdout else "{}")
        with tempfile.TemporaryDirectory(prefix=f"bench-e2e-{provider}-") as scratch:
            return _rounds(spec, hello["url"], hello["profile"], Path(scratch), rounds, export, kinds, up)
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)


def _rounds(
    spec: Spec, url: str, profile: dict[str, Any], scratch: Path, rounds: int, export: Path, kinds: list[str],
    up: Servers,
) -> str:  # fmt: skip
    config, secrets = contender_config(spec.name, profile, scratch)
    mine_out, duck_dir = scratch / "mine" / "out.parquet", scratch / "duck"
    sql = scratch / "copy.sql"
    sql.write_text(baseline_sql(spec.name, duck_dir / "unpacked" / spec.member, duck_dir / "x.parquet"), "utf-8")
    env = {
        **os.environ,
        **secrets,
        "CDRFETCH_DATA_DIR": str(scratch / "data"),  # ledger and locks of these runs only
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",  # secrets come from the env, never a keyring
    }
    pull = [sys.executable, "-m", "cdrfetch", spec.name, "pull", "-c", str(config), "--from", spec.window[0]]
    pull += ["--to", spec.window[1], "-q", "-y"]
    fetch = [sys.executable, __file__, "--baseline", url + EXPORT_PATH, str(duck_dir), str(sql)]
    mine: list[Run] = []
    theirs: list[Run] = []
    others = {kind: Side(error=up.failed.get(kind, "")) for kind in kinds if kind != "parquet"}
    parquet_rows: int | None = None
    for round_ in range(rounds):  # alternated, so a noisy moment hits both sides alike
        for directory in (mine_out.parent, duck_dir, scratch / "data"):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        mine.append(timed_run([*pull, "-o", str(mine_out)], env))
        theirs.append(timed_run(fetch))
        for kind, side in others.items():
            if not side.error:  # a destination that failed once is not retried
                shutil.rmtree(scratch / "data", ignore_errors=True)  # each pull its own ledger, as on a new machine
                (scratch / "data").mkdir()
                label = f"{spec.name}-r{round_}"
                parquet_rows = other_round(kind, up, scratch, label, pull, env, mine_out, side) or parquet_rows
    ours_s, duck_s = statistics.median(r.seconds for r in mine), statistics.median(r.seconds for r in theirs)
    best_ours, best_duck = min(r.seconds for r in mine), min(r.seconds for r in theirs)
    ours_rss, duck_rss = max(r.peak_mib for r in mine), max(r.peak_mib for r in theirs)
    ours_cpu, duck_cpu = statistics.median(r.cpu_s for r in mine), statistics.median(r.cpu_s for r in theirs)
    size = export.stat().st_size / 2**20
    lines = [
        f"{spec.name}: cdrfetch {ours_s:.2f}s (peak RSS {ours_rss:.0f} MiB) vs baseline {duck_s:.2f}s "
        f"-> ratio {ours_s / duck_s:.2f}x (target <= {TARGET}x)",
        f"  baseline peak RSS {duck_rss:.0f} MiB; export zip {size:.0f} MiB; median of {rounds} alternated runs "
        f"(cdrfetch {_runs(mine)}; baseline {_runs(theirs)})",
        # the best run of each side is the steadier figure when other work shares the machine
        f"  best: cdrfetch {best_ours:.2f}s vs baseline {best_duck:.2f}s -> ratio {best_ours / best_duck:.2f}x",
        f"  cpu (median): cdrfetch {ours_cpu:.2f}s vs baseline {duck_cpu:.2f}s -> ratio {ours_cpu / duck_cpu:.2f}x",
        f"  {compared(mine_out, duck_dir / 'x.parquet')}",
    ]
    if others:
        lines += destination_table(mine, parquet_rows, others, rounds)
    return "\n".join(lines)


def _runs(runs: list[Run]) -> str:
    return " ".join(f"{r.seconds:.2f}s/{r.cpu_s:.2f}cpu/{r.peak_mib:.0f}MiB" for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each export (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated runs of each side (default 3)")
    parser.add_argument("--providers", default=",".join(PROVIDERS), help="comma-separated subset")
    parser.add_argument(
        "--destinations", default="parquet",
        help=f"comma-separated, of {', '.join(DESTINATIONS)} (default parquet; the local Parquet pull always runs)",
    )  # fmt: skip
    args = parser.parse_args()
    chosen = [name.strip() for name in args.providers.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SPECS]
    if unknown:
        parser.error(f"unknown provider(s) {', '.join(unknown)}; choose from {', '.join(PROVIDERS)}")
    kinds = list(dict.fromkeys(["parquet", *(name.strip() for name in args.destinations.split(",") if name.strip())]))
    unknown = [name for name in kinds if name not in DESTINATIONS]
    if unknown:
        parser.error(f"unknown destination(s) {', '.join(unknown)}; choose from {', '.join(DESTINATIONS)}")
    print(f"{args.rows:,} rows per export, {args.rounds} rounds, {os.cpu_count()} CPUs", flush=True)
    failed = []
    with servers(kinds) as up:
        for name in chosen:
            try:
                print(bench(name, args.rows, args.rounds, kinds, up), flush=True)
            except SystemExit as exc:  # the local Parquet pull or the baseline failed: the next provider goes on
                print(f"{name}: FAILED: {exc}", flush=True)
                failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        GENERATORS[sys.argv[2]](Path(sys.argv[4]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--baseline":
        baseline(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--compare":
        print(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--target":
        target_io(*sys.argv[2:6])
    else:
        main()
