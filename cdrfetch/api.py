"""The Python API: the same pulls the command line runs, for notebooks, orchestrators and services.

    import cdrfetch

    summary = cdrfetch.pull("laaffic", date="2026-11-30", output="s3://cdr-lake/raw/")
    for unit in cdrfetch.plan(since_last=True, output="calls_table"):   # a named Delta destination
        cdrfetch.run(unit)                                               # anywhere, any order, any number of times
    for batch in cdrfetch.fetch("huawei-cec", start="2026-11-01", end="2026-11-08"):
        ...                                                              # normalized pyarrow.RecordBatch

Settings come from the config file, the environment and the keyring exactly as on the command line;
`settings=` adds or overrides any of them (secrets included) for this call. Failures raise the
`CdrfetchError` subclasses of `cdrfetch.errors`, each with its `exit_code`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cdrfetch.fleet import Unit, plan, shard

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Unit", "fetch", "plan", "pull", "run", "shard"]


def pull(
    provider: str,
    *,
    date: str | None = None,
    start: str | None = None,
    end: str | None = None,
    since_last: bool = False,
    output: str | None = None,
    format: str | None = None,
    profile: str | None = None,
    account: str | None = None,
    settings: Mapping[str, Any] | None = None,
    config: str | None = None,
    allow_partial: bool = False,
) -> dict[str, Any]:
    """Pull one window (default: yesterday) into `output`, like `cdrfetch <provider> pull`; returns the
    run summary (records, files, chunks, warnings; secrets masked)."""
    from cdrfetch.commands import PullOptions

    options = PullOptions(
        provider=provider, date=date, start=start, end=end, since_last=since_last, output=output, fmt=format,
        profile=profile, account=account, settings=dict(settings or {}), config=config, allow_partial=allow_partial,
    )  # fmt: skip
    return _run(options)


def run(unit: Unit | Mapping[str, Any] | str, *, config: str | None = None) -> dict[str, Any]:
    """Run one planned unit (a Unit, its `to_dict()` or its JSON); returns the run summary."""
    from cdrfetch.commands import PullOptions

    if isinstance(unit, str):
        unit = Unit.from_json(unit)
    elif not isinstance(unit, Unit):
        unit = Unit.from_dict(dict(unit))
    options = PullOptions(
        provider=unit.provider, profile=unit.profile, account=unit.account, output=unit.output, fmt=unit.format,
        config=config, unit=unit,
    )  # fmt: skip
    return _run(options)


def _run(options: Any) -> dict[str, Any]:
    from cdrfetch import logs
    from cdrfetch.commands import LogOptions, run_pull
    from cdrfetch.summary import RunSummary

    summary = RunSummary(options.provider, "", options.profile or "default", "", "")
    try:
        run_pull(options, LogOptions(quiet=True), summary)
    finally:
        logs.reset()
    return summary.to_dict()


def fetch(
    provider: str,
    *,
    date: str | None = None,
    start: str | None = None,
    end: str | None = None,
    table: str = "calls",
    profile: str | None = None,
    account: str | None = None,
    settings: Mapping[str, Any] | None = None,
    config: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Normalized record batches of one table for a window (default: yesterday), in memory: nothing is
    written and no state is kept. A chunk's rows are yielded only once the whole chunk has arrived."""
    from cdrfetch import providers, windows
    from cdrfetch.client import Client, utc_now
    from cdrfetch.commands import resolve_settings
    from cdrfetch.errors import UsageError
    from cdrfetch.pipeline import Spool
    from cdrfetch.summary import RunSummary

    cls = providers.load(provider)
    if table not in cls.output_tables():
        raise UsageError(f"{provider} has no table {table!r}", f"tables: {', '.join(cls.output_tables())}")
    resolved = resolve_settings(provider, profile, config, (), dict(settings or {}), account)
    resolved.require_complete()
    tz = windows.zone(str(resolved["tz"]))
    window = windows.from_options(day=date, start=start, end=end, tz=tz, now=utc_now())
    summary = RunSummary(provider, cls.account_of(resolved), resolved.profile, "", "")
    with Client(resolved, log=logging.getLogger(f"cdrfetch.{provider}"), summary=summary) as client:
        source = cls(resolved, client)
        for chunk in source.chunks(window):
            spool = Spool(client.scratch())
            try:
                for batch in source.fetch(chunk):
                    spool.add(batch)
                spool.close()
                yield from spool.replay(table)
            finally:
                spool.discard()
