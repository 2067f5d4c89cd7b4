"""Synthetic DMA billing data for the Polycom emulator: the export zip, built from the records and their rendering.

The records (`records`) and how they are written (`render`) live in their own modules; their names
are available here too, so callers keep one import for all of the emulator's data.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cdrfetch.providers.polycom.emulator.records import (
    CALL_TYPES,
    CLUSTERS,
    FAILURES,
    Call,
    Conference,
    hour_records,
    records,
)
from cdrfetch.providers.polycom.emulator.render import (
    CALL_HEADER,
    CONF_HEADER,
    NS,
    ZIP_TIME,
    build_zip,
    call_row,
    conf_row,
    csv_text,
    dma_time,
    itp_row,
    status_json,
    status_xml,
    unix,
)
from cdrfetch.sandbox import hostile

__all__ = [
    "CALL_HEADER",
    "CALL_TYPES",
    "CLUSTERS",
    "CONF_HEADER",
    "CSV_NAMES",
    "FAILURES",
    "NS",
    "ZIP_TIME",
    "Call",
    "Conference",
    "build_zip",
    "call_row",
    "conf_row",
    "counts_line",
    "csv_text",
    "dma_time",
    "export_zip",
    "hour_records",
    "itp_row",
    "records",
    "status_json",
    "status_xml",
    "unix",
]

CSV_NAMES = ("calls.csv", "conferences.csv", "counts.txt")


def export_zip(emulator: Any, start: datetime, end: datetime) -> tuple[bytes, int]:
    """The zip of [start, end] (to-date inclusive, as the API text says) and its record count."""
    calls, confs = records(emulator.seed, "sandbox", start, end, int(emulator.calls_per_hour), inclusive=True)
    call_rows = [call_row(call, emulator.tz) for call in calls]
    for index in range(min(int(emulator.itp_rows), len(call_rows))):
        call_rows[index] = itp_row(call_rows[index])
    if emulator.malformed and call_rows:
        call_rows[0][5] = "not-a-time"
    call_rows += [["1", "REC", "VMR", f"rec-{n}"] for n in range(int(emulator.unknown_type_rows))]
    header = emulator.header
    names = ("b.csv", "a.csv", "c.dat") if emulator.member_names == "opaque" else CSV_NAMES
    members = [
        (names[0], csv_text(CALL_HEADER if header else None, call_rows)),
        (names[1], csv_text(CONF_HEADER if header else None, [conf_row(c, emulator.tz) for c in confs])),
        (names[2], counts_line(len(calls) + bool(emulator.counts_mismatch), len(confs), emulator.excluded_clusters)),
    ]
    if emulator.hostile_archive:
        return hostile.archive(emulator.hostile_archive, [(n, t.encode()) for n, t in members]), len(calls) + len(confs)
    return build_zip(members, stored=bool(emulator.corrupt_zip)), len(calls) + len(confs)


def counts_line(calls: int, conferences: int, excluded: Any) -> str:
    """The one-line counts member: counts, included clusters, excluded clusters."""
    included = [c for c in CLUSTERS if c not in excluded]
    return (
        f"{calls} calls, {conferences} conferences, included clusters: {';'.join(included) or 'none'}, "
        f"excluded clusters: {';'.join(excluded) or 'none'}\r\n"
    )


def status_body(fields: dict[str, object], hostile_json: str) -> bytes:
    """The JSON status document; made hostile (knob hostile_json) at statusType, the field every status carries."""
    body = status_json(fields)
    return hostile.json_answer(hostile_json, json.loads(body), "statusType") if hostile_json else body
