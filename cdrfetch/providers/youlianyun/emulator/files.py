"""Youlianyun emulator data: deterministic bill rows per day and the bill-file writer (spec §8.6)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from cdrfetch.sandbox import hostile
from cdrfetch.sandbox.data import rng

SHANGHAI = ZoneInfo("Asia/Shanghai")
HEADERS = {
    "youlianyun": ("ClientId", "Callee", "startTime", "duration", "type"),
    "flypaas": ("fromClient", "to", "startTime", "duration", "bill"),
}
TYPE_LABELS = {"0": "直拨", "1": "免费", "2": "回拨"}
CLIENT_POOL = 12
BROKEN_STAMP = "2015-13-45 25:61:61"  # what knob `malformed_row` serves


@dataclass(frozen=True)
class BillRow:
    """One call as the platform stores it (naive Shanghai start time, whole seconds)."""

    client_id: str
    callee: str
    start: datetime  # naive, Asia/Shanghai
    duration: int
    type: str

    @property
    def start_utc(self) -> datetime:
        """The start as an aware UTC instant."""
        return self.start.replace(tzinfo=SHANGHAI).astimezone(timezone.utc)


@dataclass(frozen=True)
class FileFormat:
    """How a bill file is laid out (the format knobs of spec §8.6)."""

    delimiter: str = ","
    header: bool = True
    header_names: str = "youlianyun"
    encoding: str = "utf-8"
    type_style: str = "code"
    container: str = "plain"
    zero_pad: bool = True
    line_ending: str = "\r\n"


def day_rows(seed: int, sid: str, app_id: str, day: date, rows_min: int = 5, rows_max: int = 40) -> list[BillRow]:
    """The bill of one Shanghai day, sorted by start time, with the edge rows of §8.6."""
    r = rng(seed, sid, app_id, day.isoformat())
    midnight = datetime.combine(day, time())
    count = max(r.randint(rows_min, rows_max), 3)  # the edge rows need three
    rows = [_row(r, midnight + timedelta(seconds=r.randrange(86_400))) for _ in range(count - 3)]
    rows.append(_row(r, midnight + timedelta(seconds=86_390 + r.randrange(10))))  # 23:59:5x
    rows.append(_row(r, midnight + timedelta(seconds=r.randrange(86_400)), duration=0))
    rows.sort(key=lambda row: row.start)
    twin = rows[r.randrange(len(rows))]
    rows.insert(rows.index(twin) + 1, twin)  # one exact duplicate, for the occurrence index n
    return rows


def _row(r: random.Random, start: datetime, duration: int | None = None) -> BillRow:
    client = f"6000000000{r.randrange(CLIENT_POOL):04d}"
    kind = r.random()
    if kind < 0.5:
        callee = f"1{r.choice('3578')}{r.randrange(10**9):09d}"
    elif kind < 0.8:
        callee = f"0{r.randrange(10, 999)}{r.randrange(10**7):07d}"
    else:
        callee = f"6000000000{r.randrange(CLIENT_POOL):04d}"
    if duration is None:
        duration = 0 if r.random() < 0.15 else r.randint(1, 3600)
    kind = r.random()
    call_type = "0" if kind < 0.6 else "1" if kind < 0.85 else "2"
    return BillRow(client, callee, start, duration, call_type)


def _stamp(value: datetime, zero_pad: bool) -> str:
    if zero_pad:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{value.year}-{value.month}-{value.day} {value.hour}:{value.minute}:{value.second}"


def _cells(row: BillRow, fmt: FileFormat) -> tuple[str, ...]:
    kind = TYPE_LABELS[row.type] if fmt.type_style == "label" else row.type
    last = f"{row.duration * 0.0015:.4f}" if fmt.header_names == "flypaas" else kind
    return (row.client_id, row.callee, _stamp(row.start, fmt.zero_pad), str(row.duration), last)


def lines(rows: Iterable[BillRow], fmt: FileFormat, broken: int | None = None) -> Iterator[str]:
    """The text lines of the file (header first when on); data row `broken` gets a bad startTime."""
    if fmt.header:
        yield fmt.delimiter.join(HEADERS[fmt.header_names]) + fmt.line_ending
    for index, row in enumerate(rows):
        cells = _cells(row, fmt)
        if index == broken:
            cells = (*cells[:2], BROKEN_STAMP, *cells[3:])
        yield fmt.delimiter.join(cells) + fmt.line_ending


def render(rows: Iterable[BillRow], fmt: FileFormat, broken: int | None = None, member: str = "bill.txt") -> bytes:
    """The exact bytes the download serves: text, encoded, then wrapped in the container."""
    text = "".join(lines(rows, fmt, broken)).encode(fmt.encoding)
    return wrap(text, fmt.container, member)


def wrap(text: bytes, container: str, member: str = "bill.txt") -> bytes:
    """Put `text` in a zip (one member), a gzip stream, or nothing."""
    if container == "gzip":
        return gzip.compress(text, mtime=0)
    if container == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo(member, date_time=(2015, 1, 1, 0, 0, 0))
            archive.writestr(info, text, compress_type=zipfile.ZIP_DEFLATED)
        return buffer.getvalue()
    return text


def corrupt(body: bytes) -> bytes:
    """Damage the compressed payload of a zip or gzip body (headers and directory kept)."""
    start = 30 + len("bill.txt") + 4 if body.startswith(b"PK") else 14
    middle = start + (len(body) - start) // 3
    return body[:start] + bytes(b ^ 0x5A for b in body[start:middle]) + body[middle:]


def file_name(sid: str, app_id: str, day: date, digest: str) -> str:
    """The opaque fileName of a bill: base64 with a line break after 76 characters; always holds '+', '/' and '='."""
    material = hashlib.sha512(f"{sid}|{app_id}|{day}|{digest}".encode()).digest()[:58]
    text = base64.b64encode(material).decode("ascii")  # 80 characters, ends with '=='
    text = text[:5] + "+" + text[6:11] + "/" + text[12:]
    return text[:76] + "\n" + text[76:]


def hostile_bill(kind: str, rows: Iterable[BillRow], fmt: FileFormat, broken: int | None = None) -> bytes:
    """The bill text in the hostile zip `kind` (knob hostile_archive), whatever the `container` knob says."""
    return hostile.archive(kind, [("bill.txt", render(rows, replace(fmt, container="plain"), broken))])
