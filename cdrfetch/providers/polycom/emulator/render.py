"""How the emulated DMA writes its data: CSV rows in the export's columns, DMA times, the zip, status documents."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime, timezone, tzinfo

from cdrfetch.providers.polycom.emulator.records import Call, Conference

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
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
NS = "urn:com:polycom:api:rest:plcm-billing-status"


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
