"""Dagster: one asset partitioned by account and month, materialized through the cdrfetch API.

Each partition (account, month) is one `cdrfetch.pull` of that month into the `lake` destination.
Re-materializing a partition stores nothing twice (the destination merges on record_id), so Dagster's
backfills and retries are safe. The accounts are those under `accounts:` of the provider's section.
"""

from __future__ import annotations

from datetime import date

from dagster import (
    AssetExecutionContext,
    Definitions,
    MonthlyPartitionsDefinition,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
)

PROVIDER = "laaffic"
ACCOUNTS = ["acme", "globex", "initech"]  # the names under `accounts:` in the config

partitions = MultiPartitionsDefinition(
    {
        "account": StaticPartitionsDefinition(ACCOUNTS),
        "month": MonthlyPartitionsDefinition(start_date="2026-01-01"),
    }
)


def month_window(month: str) -> tuple[str, str]:
    """`2026-03-01` -> ("2026-03-01", "2026-04-01")."""
    first = date.fromisoformat(month)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first.isoformat(), following.isoformat()


@asset(partitions_def=partitions, group_name="cdr")
def laaffic_calls(context: AssetExecutionContext) -> dict[str, int]:
    import cdrfetch

    keys = context.partition_key.keys_by_dimension
    start, end = month_window(keys["month"])
    summary = cdrfetch.pull(PROVIDER, account=keys["account"], start=start, end=end, output="lake")
    context.add_output_metadata({"records": summary["records"].get("calls", 0)})
    return dict(summary["records"])


defs = Definitions(assets=[laaffic_calls])
