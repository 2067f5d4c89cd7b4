"""The scale proof: 50 accounts x 30 days planned into 1,500 units, run by 4 worker processes started like a
Kubernetes Indexed Job (each with its own data directory: its own "disk"), into one PostgreSQL database
and into one Delta table (local at full scale; on the moto S3 server with 10 accounts x 6 days). One
worker is SIGKILLed mid-way and its share run again: every expected record is stored exactly once, and
every account's state ends at the end of the window."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cdrfetch import destinations
from tests.fleet_scale import Fleet, credentials, fleet
from tests.pg_server import Database
from tests.s3_server import S3

ACCOUNTS, DAYS, WORKERS = 50, 30, 4


def run_with_a_kill(scale: Fleet, destination: str, stored: Callable[[], int], kill_after: int = 20) -> None:
    """All workers at once; worker 0 is killed once some units are stored, then its share run again."""
    workers = [scale.worker(destination, index, WORKERS) for index in range(WORKERS)]
    deadline = time.monotonic() + 600
    while stored() < kill_after and workers[0].running() and time.monotonic() < deadline:
        time.sleep(0.1)
    killed_mid_way = workers[0].running()
    workers[0].kill()
    for worker in workers[1:]:
        assert worker.wait(timeout=900) == 0, worker.tail()
    assert killed_mid_way, "worker 0 finished before it could be killed: the kill proved nothing"
    again = scale.worker(destination, 0, WORKERS)
    assert again.wait(timeout=900) == 0, again.tail()


def test_fifty_accounts_into_one_postgresql_database(pg: Database, tmp_path: Path) -> None:
    with fleet(tmp_path, ACCOUNTS, DAYS, {"db": {"url": pg.url()}}) as scale:

        def stored() -> int:
            try:
                return int(pg.query("SELECT count(*) FROM cdrfetch_chunks")[0][0])
            except Exception:  # the tables do not exist before the first unit
                return 0

        run_with_a_kill(scale, "db", stored)
        counts = collections.Counter(dict(pg.query("SELECT account, count(*) FROM calls GROUP BY account")))
        assert counts == scale.expected()
        assert pg.query("SELECT count(*) - count(DISTINCT record_id) FROM calls") == [(0,)]
        target = destinations.choose("db", None, config_file=str(scale.config))
        for number in range(ACCOUNTS):
            assert target.resume_point("youlianyun", credentials(number)[0]) == scale.complete_until


def test_fifty_accounts_into_one_local_delta_table(tmp_path: Path) -> None:
    pytest.importorskip("deltalake")
    log = tmp_path / "tables" / "calls" / "_delta_log"
    with fleet(tmp_path, ACCOUNTS, DAYS, {"lake": {"url": str(tmp_path / "tables"), "format": "delta"}}) as scale:
        run_with_a_kill(scale, "lake", lambda: len(list(log.glob("*.json"))) if log.exists() else 0)
        check_delta(scale, str(tmp_path / "tables"))


def test_accounts_into_one_delta_table_on_s3(s3: S3, tmp_path: Path) -> None:
    """The same on the moto S3 server, smaller: moto lists a bucket in time proportional to its size, so
    1,500 commits there take half an hour on this machine (tests/bench/bench_fleet.py runs that)."""
    pytest.importorskip("deltalake")
    with fleet(tmp_path, 10, 6, {"lake": {"url": s3.url("tables/"), "format": "delta"}}) as scale:

        def stored() -> int:
            log = [key for key in s3.keys() if key.startswith("tables/calls/_delta_log/")]  # noqa: SIM118
            return sum(1 for key in log if key.endswith(".json"))

        run_with_a_kill(scale, "lake", stored, kill_after=8)
        check_delta(scale, s3.url("tables/"))


def check_delta(scale: Fleet, url: str) -> None:
    """Every expected record once, and every account's state at the end of the window."""
    from deltalake import DeltaTable

    table = DeltaTable(url.rstrip("/") + "/calls").to_pyarrow_table(columns=["account", "record_id"])
    assert collections.Counter(table.column("account").to_pylist()) == scale.expected()
    assert len(set(table.column("record_id").to_pylist())) == table.num_rows
    target = destinations.choose("lake", None, config_file=str(scale.config))
    for number in range(scale.accounts):
        assert target.resume_point("youlianyun", credentials(number)[0]) == scale.complete_until
