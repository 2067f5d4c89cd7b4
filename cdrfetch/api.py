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

The command line is a layer over these functions: `cdrfetch <provider> pull` calls `pull`, `run-unit`
calls `run` and `plan` calls `plan`, so a program gets exactly what a shell script gets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cdrfetch.fleet import Unit, plan, shard
from cdrfetch.logs import LogOptions

if TYPE_CHECKING:
    import pyarrow as pa

    from cdrfetch.commands import PullOptions
    from cdrfetch.config import Resolved
    from cdrfetch.providers.base import Provider
    from cdrfetch.windows import Window

__all__ = ["LogOptions", "Unit", "fetch", "plan", "pull", "run", "shard"]
QUIET = LogOptions(quiet=True)  # a library logs only its warnings and errors unless asked for more


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
    dry_run: bool = False,
    wait_lock: float = 0.0,
    reset_state: bool = False,
    yes: bool = False,
    sandbox: bool = False,
    knobs: Sequence[str] = (),
    overrides: Sequence[str] = (),
    summary_json: str | None = None,
    metrics_file: str | None = None,
    ping_url: str | None = None,
    log: LogOptions = QUIET,
) -> dict[str, Any]:
    """Pull one window (default: yesterday) into `output` exactly as `cdrfetch <provider> pull` does (each
    keyword is the option of the same name; `overrides` are `--set KEY=VALUE` texts); returns the run
    summary (records, files, chunks, warnings, exit_code; secrets masked). A partial result raises
    `PartialResultError` (exit code 3) once the run is recorded."""
    from cdrfetch.commands import PullOptions

    options = PullOptions(
        provider=provider, date=date, start=start, end=end, since_last=since_last, output=output, fmt=format,
        profile=profile, account=account, settings=dict(settings or {}), config=config, allow_partial=allow_partial,
        dry_run=dry_run, wait_lock=wait_lock, reset_state=reset_state, yes=yes, sandbox=sandbox,
        knobs=tuple(knobs), overrides=tuple(overrides), summary_json=summary_json, metrics_file=metrics_file,
        ping_url=ping_url,
    )  # fmt: skip
    return _run(options, log)


def run(
    unit: Unit | Mapping[str, Any] | str,
    *,
    config: str | None = None,
    summary_json: str | None = None,
    log: LogOptions = QUIET,
) -> dict[str, Any]:
    """Run one planned unit (a Unit, its `to_dict()` or its JSON) as `cdrfetch run-unit` does; returns the
    run summary. An edited unit (its id no longer matches) is refused."""
    from cdrfetch.commands import PullOptions

    if isinstance(unit, str):
        unit = Unit.from_json(unit)
    elif not isinstance(unit, Unit):
        unit = Unit.from_dict(dict(unit))
    options = PullOptions(
        provider=unit.provider, profile=unit.profile, account=unit.account, output=unit.output, fmt=unit.format,
        config=config, unit=unit, summary_json=summary_json,
    )  # fmt: skip
    return _run(options, log)


def _run(options: PullOptions, log: LogOptions) -> dict[str, Any]:
    from cdrfetch.commands import new_summary, run_pull

    summary = new_summary(options)
    run_pull(options, log, summary)
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
    written and no state is kept. A chunk's rows are yielded only once the whole chunk has arrived, and
    a record two chunks both carry (a provider's inclusive boundary) is yielded once, as `pull` writes it.
    Mistakes (an unknown provider or table, a missing setting, a bad window) raise here, before the
    first batch is asked for."""
    from cdrfetch import providers, windows
    from cdrfetch.client import utc_now
    from cdrfetch.commands import resolve_settings
    from cdrfetch.errors import UsageError

    cls = providers.load(provider)
    if table not in cls.output_tables():
        raise UsageError(f"{provider} has no table {table!r}", f"tables: {', '.join(cls.output_tables())}")
    resolved = resolve_settings(provider, profile, config, (), dict(settings or {}), account)
    resolved.require_complete()
    tz = windows.zone(str(resolved["tz"]))
    window = windows.from_options(day=date, start=start, end=end, tz=tz, now=utc_now())
    return _batches(cls, resolved, window, table)


def _batches(cls: type[Provider], resolved: Resolved, window: Window, table: str) -> Iterator[pa.RecordBatch]:
    from cdrfetch import fingerprints
    from cdrfetch.client import Client
    from cdrfetch.spool import Spool
    from cdrfetch.summary import RunSummary

    summary = RunSummary(cls.name, cls.account_of(resolved), resolved.profile, "", "")
    seen = fingerprints.FingerprintSet()
    with Client(resolved, log=logging.getLogger(f"cdrfetch.{cls.name}"), summary=summary) as client:
        source = cls(resolved, client)
        for chunk in source.chunks(window):
            spool = Spool(client.scratch())
            try:
                for batch in source.fetch(chunk):
                    spool.add(batch)
                spool.close()
                for data in spool.replay(table):
                    yield fingerprints.unseen(data, seen)
            finally:
                spool.discard()
