"""Synthetic DMA billing data for the Polycom emulator: records, the export zip, status documents.

Records are generated per UTC hour from (seed, user, hour), so any window, however it is chunked,
sees the same records: those of the hours around it whose start lies inside it. A record never
starts more than an hour after its generating hour, so one hour of look-back is enough.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from cdrfetch.sandbox.data import rng

CALL_TYPES = ("PT-PT", "VMR", "VEQ", "VSC-hunt group", "VSC-fwd busy", "VMR-subscribe only", "VMR-Lync AVMCU")
FAILURES = ("", "", "", "", "486:BUSY HERE", "408:REQUEST TIMEOUT")
CALL_HEADER = [
    "version",
    "type",
    "callType",
    "callUuid",
    "dialin",
    "startTime",
    "endTime",
    "origEndpoint",
    "destEndpoint",
    "userDataA",
    "userDataB",
    "userDataC",
    "userDataD",
    "userDataE",
    "failureSignalingCode",
    "origModel",
    "origVersion",
    "destModel",
    "destVersion",
    "displays",
    "minVideoResolution",
    "maxVideoResolution",
    "origSignalingId",
    "origCallId",
    "destCallId",
    "chairPasscode",
    "confRequiresChair",
    "termConfAfterChairDrops",
    "charJoinTime",
]
CONF_HEADER = [
    "version",
    "type",
    "confType",
    "cluster",
    "confUUID",
    "startTime",
    "endTime",
    "userID",
    "roomID",
    "partCount",
    "classOfService",
    "userDataA",
    "userDataB",
    "userDataC",
    "maxResourcesUsed",
]
CLUSTERS = ("dma-east", "dma-west")
CSV_NAMES = ("calls.csv", "conferences.csv", "counts.txt")
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
NS = "urn:com:polycom:api:rest:plcm-billing-status"


@dataclass(frozen=True)
class Call:
    """One CALL record (a call or one segment of it)."""

    uuid: str
    start: datetime  # UTC, milliseconds
    end: datetime | None
    call_type: str
    dialin: bool
    orig: str
    dest: str
    failure: str

    @property
    def duration_s(self) -> int | None:
        """floor(end - start) in seconds, as a correct client computes it."""
        return None if self.end is None else int((self.end - self.start).total_seconds() // 1)


@dataclass(frozen=True)
class Conference:
    """One CONF record."""

    uuid: str
    start: datetime
    end: datetime
    conf_type: str
    cluster: str
    owner: str
    room: str
    parts: int


def _endpoint(r: random.Random, prefix: str) -> str:
    return f"sip:{prefix}{r.randrange(1000, 9999)}@example.com" if r.random() < 0.7 else f"h323:{r.randrange(10**6)}"


def hour_records(seed: int, user: str, hour: datetime, per_hour: int) -> tuple[list[Call], list[Conference]]:
    """The records generated for one UTC hour (deterministic)."""
    r = rng(seed, user, hour.isoformat())
    calls: list[Call] = []
    confs: list[Conference] = []
    for index in range(per_hour):
        on_the_hour = index == 0 and r.random() < 0.3  # exactly at a window end: the inclusive to-date case
        start = hour + timedelta(milliseconds=0 if on_the_hour else r.randrange(3_600_000))
        length = timedelta(milliseconds=r.randrange(1_000, 7_200_000))
        call_type = r.choice(CALL_TYPES)
        call_id = str(uuid.UUID(int=r.getrandbits(128), version=4))
        end = None if r.random() < 0.08 else start + length
        call = Call(
            call_id, start, end, call_type, r.random() < 0.6, _endpoint(r, "u"), _endpoint(r, "d"), r.choice(FAILURES)
        )
        calls.append(call)
        if r.random() < 0.25:  # a second segment of the same call, starting later (within the hour)
            later = start + timedelta(milliseconds=r.randrange(1, 3_000_000))
            calls.append(Call(call_id, later, later + length, call_type, call.dialin, call.orig, call.dest, ""))
        if call_type == "VMR" and r.random() < 0.34:
            confs.append(
                Conference(
                    str(uuid.UUID(int=r.getrandbits(128), version=4)),
                    start,
                    start + length,
                    r.choice(("PCO", "LYNC", "AD-HOC")),
                    r.choice(CLUSTERS),
                    f"EXAMPLE\\user{r.randrange(100)}",
                    str(r.randrange(1000, 9999)),
                    r.randint(2, 12),
                )
            )
    return calls, confs


def records(
    seed: int, user: str, start: datetime, end: datetime, per_hour: int, *, inclusive: bool
) -> tuple[list[Call], list[Conference]]:
    """Every record starting in [start, end) (or [start, end] when `inclusive`), sorted."""
    hour = start.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    calls: list[Call] = []
    confs: list[Conference] = []
    while hour <= end:
        more_calls, more_confs = hour_records(seed, user, hour, per_hour)
        calls += more_calls
        confs += more_confs
        hour += timedelta(hours=1)

    def inside(moment: datetime) -> bool:
        return start <= moment <= end if inclusive else start <= moment < end

    return (
        sorted((c for c in calls if inside(c.start)), key=lambda c: (c.start, c.uuid)),
        sorted((c for c in confs if inside(c.start)), key=lambda c: (c.start, c.uuid)),
    )


def dma_time(value: datetime | None, tz: tzinfo) -> str:
    """`YYYY-MM-DDTHH:MM:SS.FFF+hh:mm` in the cluster's zone (its offset at that instant)."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%dT%H:%M:%S}.{local.microsecond // 1000:03d}{offset[:3]}:{offset[3:]}"


def call_row(call: Call, tz: tzinfo) -> list[str]:
    """The 29 emulator columns of a CALL row."""
    vmr = call.call_type.startswith("VMR")
    return [
        "1",
        "CALL",
        call.call_type,
        call.uuid,
        "TRUE" if call.dialin else "FALSE",
        dma_time(call.start, tz),
        dma_time(call.end, tz),
        call.orig,
        call.dest,
        "cost-center-7",
        "room-42" if vmr else "",
        "",
        "",
        "",
        call.failure,
        "RealPresence Group 500",
        "6.2.2",
        "HDX 8000",
        "3.1.14",
        "1",
        "720",
        "1080",
        call.orig if call.dialin else "",
        f"oc-{call.uuid[:8]}",
        f"dc-{call.uuid[:8]}",
        "FALSE",
        "TRUE" if vmr else "FALSE",
        "FALSE",
        "",
    ]


def itp_row(row: list[str], codecs: int = 3) -> list[str]:
    """An ITP version of a row: every field after the third becomes a per-codec list."""
    lists = [",".join([cell] * codecs) for cell in row[3:]]
    lists[0] = ",".join([row[3]] + [f"{row[3]}-{n}" for n in range(2, codecs + 1)])  # one call id per codec
    return row[:3] + lists


def conf_row(conf: Conference, tz: tzinfo) -> list[str]:
    """The 15 documented columns of a CONF row."""
    return [
        "1",
        "CONF",
        conf.conf_type,
        conf.cluster,
        conf.uuid,
        dma_time(conf.start, tz),
        dma_time(conf.end, tz),
        conf.owner,
        conf.room,
        str(conf.parts),
        "Gold",
        "owner-pass",
        "room-pass",
        "",
        f"video: {conf.parts} voice: 1",
    ]


def csv_text(header: list[str] | None, rows: list[list[str]]) -> str:
    """RFC 4180 text, CRLF line ends, header first when given."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def build_zip(members: list[tuple[str, str]], *, stored: bool = False) -> bytes:
    """A deterministic zip (fixed entry times, given order)."""
    out = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as bundle:
        for name, text in members:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = method
            bundle.writestr(info, text.encode("utf-8"))
    return out.getvalue()


def status_json(fields: dict[str, object]) -> bytes:
    """The bare camelCase JSON object."""
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode("utf-8")


def status_xml(fields: dict[str, object]) -> bytes:
    """`plcm-billing-status` with kebab-case elements in its namespace."""
    parts = [f'<plcm-billing-status xmlns="{NS}">']
    for key, value in fields.items():
        if value is None:
            continue
        tag = "".join(f"-{c.lower()}" if c.isupper() else c for c in key)
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        parts.append(f"<{tag}>{text.replace('&', '&amp;').replace('<', '&lt;')}</{tag}>")
    return ("".join(parts) + "</plcm-billing-status>").encode("utf-8")


def unix(value: datetime) -> int:
    """UNIX seconds of an instant."""
    return int(value.astimezone(timezone.utc).timestamp())


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
    return build_zip(members, stored=bool(emulator.corrupt_zip)), len(calls) + len(confs)


def counts_line(calls: int, conferences: int, excluded: Any) -> str:
    """The one-line counts member: counts, included clusters, excluded clusters."""
    included = [c for c in CLUSTERS if c not in excluded]
    return (
        f"{calls} calls, {conferences} conferences, included clusters: {';'.join(included) or 'none'}, "
        f"excluded clusters: {';'.join(excluded) or 'none'}\r\n"
    )
