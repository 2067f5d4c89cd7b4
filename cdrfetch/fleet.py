"""Work units for fleets: every (profile, provider, account) of the config, cut into window chunks.

A unit is one chunk of one account into one destination. Its id is a digest of exactly those
fields, so the same plan always gives the same units and ids, and running a unit again (on any
machine, in any order) stores nothing twice: files are replaced under the same name, tables merge
on record_id and advance their state only over contiguous stored chunks (`Chunk.anchor` is the
plan's start for the account, so a unit stored after a gap never makes the gap look complete).
Existing engines run the units: Airflow dynamic task mapping, Kubernetes Indexed Jobs (`shard`),
Dagster partitions, `xargs -P`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdrfetch import accounts, config, providers, windows
from cdrfetch.errors import ConfigError, UsageError, suggest

if TYPE_CHECKING:
    from cdrfetch.config import Resolved
    from cdrfetch.providers.base import Provider

log = logging.getLogger("cdrfetch.fleet")
FIELDS = ("provider", "profile", "account", "start", "end", "anchor", "output", "format")


@dataclass(frozen=True)
class Unit:
    """One chunk of one account, into one destination. Times are aware UTC datetimes."""

    provider: str
    profile: str
    account: str | None  # the name under `accounts:`; None when the provider section is one account
    start: datetime
    end: datetime
    anchor: datetime  # where the plan started for this account
    output: str | None  # the -o value: path, URL or destination name (None: ./cdrs/)
    format: str | None = None

    @property
    def id(self) -> str:
        """Stable id: a digest of every field (the same unit has the same id on every machine)."""
        canonical = json.dumps(self._fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]

    def _fields(self) -> dict[str, Any]:
        fields = asdict(self)
        for name in ("start", "end", "anchor"):
            fields[name] = fields[name].astimezone(windows.UTC).isoformat()
        return fields

    def to_dict(self) -> dict[str, Any]:
        """The unit as JSON-ready data, its id included."""
        return {"id": self.id, **self._fields()}

    @classmethod
    def from_dict(cls, data: Any) -> Unit:
        """A unit from `to_dict` data; an edited unit (id not matching) is refused."""
        if not isinstance(data, dict) or not set(FIELDS) <= set(data):
            raise UsageError("not a cdrfetch work unit", f"a unit is a JSON object with {', '.join(FIELDS)}")
        try:
            unit = cls(
                str(data["provider"]), str(data["profile"]), _optional(data["account"]),
                _instant(data["start"]), _instant(data["end"]), _instant(data["anchor"]),
                _optional(data["output"]), _optional(data["format"]),
            )  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"malformed work unit: {exc}", "pass a unit exactly as `cdrfetch plan` printed it"
            ) from None
        if "id" in data and data["id"] != unit.id:
            raise UsageError(f"work unit {data['id']} was changed after planning", "re-plan instead of editing units")
        return unit

    @classmethod
    def from_json(cls, text: str) -> Unit:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError:
            raise UsageError(
                "the work unit is not valid JSON", "pass a unit exactly as `cdrfetch plan` printed it"
            ) from None

    def window(self, tz: Any) -> windows.Window:
        return windows.Window(self.start, self.end, tz)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _instant(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(windows.UTC)


@dataclass(frozen=True)
class Target:
    """One account of the config: who to pull."""

    profile: str
    provider: str
    account: str | None


def targets(config_file: str | None, profiles: Sequence[str] = (), only: Sequence[str] = ()) -> list[Target]:
    """Every (profile, provider, account) in the config file, in a stable order."""
    path, _ = config.config_path(config_file)
    if not path.exists():
        raise ConfigError(f"config file {path} not found", "a fleet is described in the config file")
    every = config.read_profiles(path)
    for name in profiles:
        if name not in every:
            raise ConfigError(f"profile {name!r} not found in {path}{suggest(name, every)}", "check --profile")
    for name in only:
        providers.require(name)
    found = []
    for profile in sorted(profiles or every):
        for provider, section in sorted((every[profile] or {}).items()):
            if only and provider not in only:
                continue
            names: list[str | None] = list(accounts.names(section)) if isinstance(section, dict) else []
            found += [Target(profile, provider, account) for account in names or [None]]
    return found


def plan(
    *,
    since_last: bool = False,
    start: str | None = None,
    end: str | None = None,
    output: str | None = None,
    fmt: str | None = None,
    config_file: str | None = None,
    profiles: Sequence[str] = (),
    only: Sequence[str] = (),
    now: datetime | None = None,
) -> list[Unit]:
    """Every account's window (--since-last: from its state; else --from/--to) cut into unit chunks."""
    from cdrfetch import commands, destinations
    from cdrfetch.client import utc_now
    from cdrfetch.ledger import Key, Ledger

    if since_last == bool(start or end):
        raise UsageError("plan needs either --since-last or --from/--to", "a backfill is --from DATE --to DATE")
    now = (now or utc_now()).replace(microsecond=0)
    destination = destinations.choose(output, fmt, config_file=config_file)
    if since_last and not destination.keeps_state:
        raise UsageError(
            f"plan --since-last needs a destination that keeps the state: {destination.describe()} does not",
            "plan into a Delta or PostgreSQL destination, or plan an explicit --from/--to window",
        )
    refuse_one_file(destination)
    units: list[Unit] = []
    for target in targets(config_file, profiles, only):
        cls = providers.load(target.provider)
        settings = commands.resolve_settings(target.provider, target.profile, config_file, (), {}, target.account)
        key = Key(cls.name, settings.profile, cls.account_of(settings))
        options = commands.PullOptions(provider=target.provider, start=start, end=end, since_last=since_last)
        state = commands.State(Ledger(), destination, key)
        window = commands.choose_window(options, state, settings, now, log)
        if window is None:
            continue
        units += [
            Unit(target.provider, target.profile, target.account, chunk.start, chunk.end, window.start, output, fmt)
            for chunk in chunks_of(cls, settings, window)
        ]
    return units


def chunks_of(cls: type[Provider], settings: Resolved, window: windows.Window) -> list[windows.Window]:
    """The provider's own chunks of `window`, without a request: chunking reads the clock, never the network."""
    from cdrfetch.client import Client
    from cdrfetch.summary import RunSummary

    summary = RunSummary(cls.name, cls.account_of(settings), settings.profile, "", "")
    with Client(settings, log=log, summary=summary) as client:
        return cls(settings, client).chunks(window)


def shard(units: Iterable[Unit], index: int, count: int) -> list[Unit]:
    """The units worker `index` of `count` runs (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX):
    every unit goes to exactly one worker, by its id, whatever order the units come in."""
    if not 0 <= index < count:
        raise UsageError(f"shard {index} of {count} does not exist", "the index runs from 0 to count - 1")
    return [unit for unit in units if int(unit.id[:8], 16) % count == index]


def refuse_one_file(destination: Any) -> None:
    """Many accounts or units into one file would replace each other: a fleet writes a directory or a table."""
    from cdrfetch.destinations.files import Files
    from cdrfetch.sinks import names_directory

    if isinstance(destination, Files) and (destination.output == "-" or not names_directory(destination.output)):
        raise UsageError(
            f"-o {destination.describe()} is one file, but many accounts and windows would replace each other there",
            "write a directory (end it with '/'), a prefix, or a table",
        )
