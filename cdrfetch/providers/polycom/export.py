"""Polycom DMA export zip: checked and unpacked (via cdrfetch.archive), rows streamed out."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from cdrfetch import archive
from cdrfetch.errors import DataError
from cdrfetch.providers.polycom.parse import Export, ExportParser
from cdrfetch.records import Batch, batches, table_batches


def unpack(path: Path, directory: Path, what: str) -> list[archive.Member]:
    """The members of a downloaded export zip, unpacked into `directory` with every archive check
    (CRC and sizes, bombs refused before any byte is inflated); damage is retryable."""
    if archive.sniff(path) != archive.ZIP:
        raise DataError(f"{what}: the answer is not a zip archive", "run again later", retryable=True)
    return archive.extract(path, directory, name=what)


def read_export(
    members: list[archive.Member], tables: Mapping[str, pa.Schema], *, account: str, chunk_end: datetime
) -> Generator[Batch, None, tuple[Export, list[str], list[str]]]:
    """Yields every member's rows as batches of `tables`; returns the export (with its counts),
    the excluded clusters, and warnings for the run summary."""
    parser = ExportParser(account=account, chunk_end=chunk_end)
    for member in sorted(members, key=_order):
        with open(member.path, "rb") as handle:
            for table in parser.member(member.name, handle):
                yield from table_batches("calls", table)
    export = parser.export
    yield from batches("calls", tables["calls"], export.calls)
    yield from batches("conferences", tables["conferences"], export.conferences)
    warnings, excluded = parser.check_counts()
    if export.unknown_types:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(export.unknown_types.items()))
        warnings.append(f"rows of unknown type not written: {kinds}")
    return export, excluded, [*export.warnings, *warnings]


def _order(member: archive.Member) -> tuple[int, str]:
    """Calls first, then conferences, then the rest (names only order the work, never route rows)."""
    lowered = member.name.lower()
    return (0 if "call" in lowered else 1 if "conf" in lowered else 2, member.name)
