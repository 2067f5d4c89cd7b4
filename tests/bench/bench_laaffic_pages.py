"""Laaffic concurrent paging: 100,000 records (1,000 pages) with 50 ms of latency per request.

Prints the concurrent pull against the ideal `pages x latency / concurrency` (target: within 1.10x)
and against a sequential pull (concurrency 1) measured in the same run. The emulator pre-renders
the window once (timed separately), so each page costs it a slice, not a pass over the data.
It runs in its own process by default, as a real server would: in this process its request
handling would compete with the client for the GIL and be counted as client time
(`--in-process` shows that variant).

Run: PYTHONPATH=$PWD python tests/bench/bench_laaffic_pages.py
     [--pages 1000] [--latency 0.05] [--concurrency 4] [--in-process] [--no-sequential]
(10,000 pages: `--pages 10000 --no-sequential`, or the sequential pull alone takes over 8 minutes)
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cdrfetch.client import Client
from cdrfetch.config import resolve
from cdrfetch.providers.laaffic.emulator import LaafficEmulator
from cdrfetch.providers.laaffic.provider import Laaffic
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.summary import RunSummary
from cdrfetch.windows import Window, zone

NOW = datetime(2024, 3, 25, 4, 0, tzinfo=timezone.utc)
DAYS = 20  # the window: one chunk, inside Laaffic's two-month retention; records a day make up the pages


def clock() -> datetime:
    return NOW


def bench_window(pages: int) -> Window:
    """`pages` x 100 records over DAYS whole days ending 2024-03-21 (Shanghai), days before NOW."""
    tz = zone("Asia/Shanghai")
    end = datetime(2024, 3, 21, tzinfo=tz)
    return Window(end - timedelta(days=DAYS), end, tz)


def per_day(pages: int) -> int:
    return pages * 100 // DAYS


def serve(conn: Connection, pages: int, latency: float) -> None:
    """Run the emulator (pre-rendered, with latency) until told to stop; send back its facts."""
    emulator = LaafficEmulator(clock=clock, records_min=per_day(pages), records_max=per_day(pages))
    window = bench_window(pages)
    began = time.perf_counter()
    emulator.preload(window)
    prepared = time.perf_counter() - began
    emulator.faults.latency = latency
    with SandboxServer(emulator) as server:
        conn.send((emulator.profile(server.url), prepared, len(emulator.expected_calls(window))))
        conn.recv()


def pull(profile: dict[str, Any], window: Window, concurrency: int, config: Path) -> tuple[float, list[str]]:
    """Seconds taken and the record ids of one full pull with `concurrency`."""
    injected = {**profile, "concurrency": concurrency}
    settings = resolve("laaffic", Laaffic.all_settings(), config=str(config), injected=injected, keyring_lookup=False)
    summary = RunSummary("laaffic", str(settings["api_key"]), "bench", "", "")
    with Client(settings, log=logging.getLogger("cdrfetch.bench"), summary=summary, clock=clock) as client:
        provider = Laaffic(settings, client)
        began, ids = time.perf_counter(), []
        for chunk in provider.chunks(window):
            for batch in provider.fetch(chunk):
                ids.extend(batch.data.column("record_id").to_pylist())
        return time.perf_counter() - began, ids


def floor(profile: dict[str, Any], window: Window, concurrency: int, per_day_records: int) -> float:
    """Seconds for plain `requests` to fetch and decode the same pages (no cdrfetch): the HTTP floor."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from cdrfetch.providers.laaffic.protocol import CONTENT_TYPE, LaafficAuth, query_body

    session = requests.Session()
    auth = LaafficAuth(profile["api_key"], profile["api_secret"], clock)
    url = profile["base_url"] + "/number/record/queryPage"
    pages = len(window.local_days(window.tz)) * per_day_records // 100

    def page(number: int) -> int:
        body = query_body(window, window.tz, number)
        answer = session.post(url, data=body, headers={"Content-Type": CONTENT_TYPE}, auth=auth).json()
        return len(answer["data"]["records"])

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        assert sum(pool.map(page, range(1, pages + 1))) == pages * 100
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000, help="pages of 100 records (a multiple of 20)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--in-process", action="store_true", help="run the emulator in this process (shares the GIL)")
    parser.add_argument("--no-sequential", action="store_true", help="skip the concurrency-1 pull")
    args = parser.parse_args()
    window = bench_window(args.pages)
    ours, theirs = multiprocessing.Pipe()
    if args.in_process:
        server = threading.Thread(target=serve, args=(theirs, args.pages, args.latency), daemon=True)
    else:
        server = multiprocessing.get_context("spawn").Process(target=serve, args=(theirs, args.pages, args.latency))
    server.start()
    profile, prepared, expected = ours.recv()
    print(
        f"emulator ({'this' if args.in_process else 'own'} process): {expected:,} records rendered in {prepared:.2f}s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text("profiles: {}\n", encoding="utf-8")
        concurrent, ids = pull(profile, window, args.concurrency, config)
        assert len(ids) == len(set(ids)) == expected == args.pages * 100, (len(ids), expected)
        sequential = None
        if not args.no_sequential:
            sequential, ids = pull(profile, window, 1, config)
            assert len(ids) == expected
        http_floor = floor(profile, window, args.concurrency, per_day(args.pages))
    ours.send("stop")
    server.join()
    ideal = args.pages * args.latency / args.concurrency
    print(f"pages: {args.pages}, latency: {args.latency * 1000:.0f} ms, concurrency: {args.concurrency}")
    print(f"ideal (pages x latency / concurrency): {ideal:.2f}s")
    print(f"concurrent pull: {concurrent:.2f}s  -> {concurrent / ideal:.3f}x the ideal (target 1.10x)")
    if sequential is not None:
        print(f"sequential pull: {sequential:.2f}s  -> concurrent is {sequential / concurrent:.2f}x faster")
    print(
        f"plain requests, same pages and concurrency, no parsing: {http_floor:.2f}s ({http_floor / ideal:.3f}x ideal)"
    )


if __name__ == "__main__":
    main()
