"""Airflow: every account's CDRs each night, one mapped task per work unit.

`plan_units` asks cdrfetch for the units of every account in the config (from each account's state
in the destination to now); Airflow's dynamic task mapping runs one `run_unit` task per unit, with
Airflow's own retries, concurrency limits and UI. A unit can run on any worker, in any order, any
number of times: a retry never stores a record twice, and the state in the destination never claims
a gap as complete.

Put the config file (CDRFETCH_CONFIG) and the secrets (env variables, *_FILE or a keyring backend)
on the workers; `lake` is a named destination of that config (e.g. a Delta table on S3).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.decorators import dag, task

DESTINATION = "lake"


@dag(
    schedule="30 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=10)},
    tags=["cdr"],
)
def cdrfetch_nightly() -> None:
    @task
    def plan_units() -> list[dict[str, Any]]:
        import cdrfetch

        return [unit.to_dict() for unit in cdrfetch.plan(since_last=True, output=DESTINATION)]

    @task(max_active_tis_per_dag=8)
    def run_unit(unit: dict[str, Any]) -> dict[str, Any]:
        import cdrfetch

        summary = cdrfetch.run(unit)  # raises a CdrfetchError (with .exit_code) on failure
        return {"unit": unit["id"], "records": summary["records"]}

    run_unit.expand(unit=plan_units())


cdrfetch_nightly()
