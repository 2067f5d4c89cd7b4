"""The destination contract: where a pull's tables go, and how they are committed.

A pull opens one `Load` on its destination and hands it each chunk once the chunk is complete
(spooled in full), or while it is fetched where the load can take the chunk back (`Load.streams`).
File destinations keep the rows in temp files and put them in place when the pull commits; table
destinations (Delta Lake, PostgreSQL) merge each chunk on `record_id` in one transaction that also
advances the account's state, so `--since-last` resumes from the table itself.
Nothing half-written is ever visible, and a record stored twice is stored once.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from cdrfetch.errors import ConfigError

if TYPE_CHECKING:
    from cdrfetch.windows import Window


@dataclass(frozen=True)
class Where:
    """What names a pull's outputs: the account, the window's label and its start (in the profile's zone)."""

    provider: str
    account: str
    label: str
    start: datetime

    @classmethod
    def of_window(cls, provider: str, account: str, window: Window) -> Where:
        """Where a pull of `window` puts its outputs."""
        return cls(provider, account, window.label, window.start.astimezone(window.tz))


@dataclass(frozen=True)
class Chunk:
    """One complete chunk handed to a destination, and how far it proves the account complete.

    `end` is capped at the pull's start (later data did not exist yet). `anchor` is where the
    account's state may begin when the destination has none: the start of the pull (or plan), so
    chunks stored out of order never make a gap before them look complete.
    """

    provider: str
    account: str
    start: datetime
    end: datetime
    anchor: datetime
    unit_id: str | None = None


class Load(abc.ABC):
    """One pull's writes into a destination."""

    @abc.abstractmethod
    def store(self, chunk: Chunk, tables: Mapping[str, Iterable[pa.RecordBatch]]) -> dict[str, int]:
        """Store one complete chunk's rows; returns the rows newly stored per table.

        Table destinations commit here (rows and state together); file destinations only append.
        """

    def streams(self) -> bool:
        """Whether the next `store` may be handed a chunk while it is still being fetched.

        Only when a failure of the batches' iterator inside `store` leaves the load as if the chunk
        had never been offered (`store` then lets the error through). Otherwise each chunk is spooled
        in full first. A streamed chunk's rows come as tables of several batches as well as batches.
        """
        return False

    def commit(self) -> list[dict[str, object]]:
        """Make everything stored visible; returns one entry per file written (path, rows, bytes, sha256)."""
        return []

    def abort(self) -> None:
        """Drop whatever is not committed; nothing half-written stays visible."""


class Destination(abc.ABC):
    """A place a pull writes to. `keeps_state`: the destination, not the local ledger, holds the
    --since-last state and the record ids already stored."""

    keeps_state: ClassVar[bool] = False

    @abc.abstractmethod
    def describe(self) -> str:
        """Where, for messages (never with a secret)."""

    @abc.abstractmethod
    def open(self, tables: Mapping[str, pa.Schema], where: Where) -> Load:
        """Start one pull's writes of `tables`."""

    def planned(self, tables: Mapping[str, pa.Schema], where: Where) -> dict[str, str]:
        """Where each table of one pull would land, for `pull --dry-run` (nothing is opened)."""
        return {table: f"table {table} in {self.describe()}" for table in tables}

    def resume_point(self, provider: str, account: str) -> datetime | None:
        """How far `account` is complete in this destination (only when `keeps_state`)."""
        raise NotImplementedError

    def check(self, tables: Mapping[str, pa.Schema]) -> str:
        """`doctor`: raise a CdrfetchError unless the destination is reachable, writable and compatible."""
        return self.describe()


def needs(module: str, extra: str) -> None:
    """Fail with one line when an optional library is missing (the extra that brings it)."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        hint = f"pip install 'cdrfetch[{extra}]'"
        raise ConfigError(f"this destination needs {module}, which is not installed", hint)


def evolution(table: str, existing: list[tuple[str, str]], wanted: list[tuple[str, str]]) -> list[int]:
    """Positions of `wanted` columns an existing table lacks (trailing only); refuses any other difference.

    Columns are (name, type) in each destination's own type names. The schema is a public contract
    whose columns are only ever added at the end, so a table with fewer trailing columns is from an
    older cdrfetch and is evolved; anything else is another table.
    """
    for position, (have, want) in enumerate(zip(existing, wanted, strict=False)):
        if have != want:
            raise ConfigError(
                f"existing table {table!r} does not match the {table} schema: column {position + 1} is "
                f"{have[0]} {have[1]}, expected {want[0]} {want[1]}",
                "point the destination at another table, or migrate this one",
            )
    if len(existing) > len(wanted):
        extra = ", ".join(name for name, _ in existing[len(wanted) :])
        raise ConfigError(
            f"existing table {table!r} has columns this cdrfetch does not know: {extra}",
            "upgrade cdrfetch, or point the destination at another table",
        )
    return list(range(len(existing), len(wanted)))
