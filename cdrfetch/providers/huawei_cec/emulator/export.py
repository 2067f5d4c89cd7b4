"""Synthetic CC-FS exports: the rows of `_call` / `_record` members and the zip around them.

Calls come from sandbox.data (deterministic per seed, AK and day). Each call becomes one or more
`Leg`s (CC-FS writes one `_call` row per leg: call_id_num 1, 2, ..., -1), and `expected_calls`
is computed from the legs' UTC datetimes, never by parsing what was rendered.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from cdrfetch.sandbox import data
from cdrfetch.sandbox.server import ExpectedCall

HEADER_CALL = [
    "developer",
    "account_id",
    "cc_id",
    "agent_id",
    "call_id",
    "caller_no",
    "callee_no",
    "wait_begin",
    "wait_end",
    "ack_begin",
    "ack_end",
    "call_begin",
    "call_end",
    "device_type",
    "device_no",
    "call_type",
    "release_cause",
    "call_id_num",
    "vdn_id",
    "pre_device_type",
    "pre_device_no",
]
HEADER_RECORD = [
    "developer",
    "account_id",
    "cc_id",
    "agent_id",
    "call_id",
    "caller_no",
    "callee_no",
    "call_begin",
    "call_end",
    "file_name",
    "task_status",
    "task_result",
    "original_file_name",
    "vdn_id",
    "call_type",
    "media_type",
    "user_wanted_skill_id",
    "current_skill_id",
]
OUTBOUND = ("7", "40", "41", "42", "43", "44", "45")
CAUSES = {"NORMAL_CLEARING": "16", "USER_BUSY": "17", "NO_ANSWER": "19", "CALL_REJECTED": "21"}
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed entry times: the same data always gives the same bytes


@dataclass(frozen=True)
class Leg:
    """One `_call` row of a call: its part number and, when answered, its talk span (UTC)."""

    call: data.SynthCall
    number: str  # call_id_num: "-1" on the last (or only) row
    begin: datetime | None
    end: datetime | None

    @property
    def start(self) -> datetime:
        """What a correct client reports as start_time: call_begin, else wait_begin (when the call arrived)."""
        return self.begin or self.call.start


@dataclass(frozen=True)
class Style:
    """CSV variations (spec §8.6): header row, BOM, GBK, extra or missing trailing columns."""

    header: bool = True
    bom: bool = False
    gbk: bool = False
    extra_columns: int = 0
    short_rows: bool = False
    malformed: bool = False


def rows_between(seed: int, ak: str, start: datetime, end: datetime, tz: tzinfo, **sizes: int) -> list[Leg]:
    """The `_call` rows CC-FS exports for `[start, end)`: legs whose start lies inside it.

    The emulator filters on the start a client derives (call_begin, else wait_begin), so every
    leg belongs to exactly one chunk; a leg starts less than a day after its call arrives.
    """
    found = data.calls_between(seed, ak, start - timedelta(days=1), end, tz, **sizes)
    return [leg for call in found for leg in legs(call) if start <= leg.start < end]


def legs(call: data.SynthCall) -> list[Leg]:
    """Unanswered: one row without talk times. Every fourth answered call: three rows (1, 2, -1)."""
    if call.duration_s == 0:
        return [Leg(call, "-1", None, None)]
    talk = call.start + timedelta(seconds=call.ring_s)  # the caller waits `ring_s`, then talks
    end = talk + timedelta(seconds=call.duration_s)
    if call.index % 4 != 1 or call.duration_s < 3:
        return [Leg(call, "-1", talk, end)]
    third = timedelta(seconds=call.duration_s // 3)
    cuts = [talk, talk + third, talk + 2 * third, end]
    return [Leg(call, number, cuts[i], cuts[i + 1]) for i, number in enumerate(("1", "2", "-1"))]


def expected(seed: int, ak: str, start: datetime, end: datetime, tz: tzinfo, **sizes: int) -> list[ExpectedCall]:
    """One ExpectedCall per `_call` row of the window."""
    return [
        ExpectedCall(leg.call.caller, leg.call.callee, leg.start, _seconds(leg))
        for leg in rows_between(seed, ak, start, end, tz, **sizes)
    ]


def _seconds(leg: Leg) -> int | None:
    return None if leg.begin is None or leg.end is None else int((leg.end - leg.begin).total_seconds())


def call_type(call: data.SynthCall) -> str:
    """A native code per direction, with an undocumented one now and then (maps to unknown)."""
    if call.index % 9 == 4:
        return "99"
    if call.direction == "inbound":
        return "0"
    return "6" if call.direction == "internal" else OUTBOUND[call.index % len(OUTBOUND)]


def call_row(leg: Leg, ak: str, tz: tzinfo) -> list[str]:
    """The 21 documented `_call` cells of one leg, times written in the data zone."""
    call, answered = leg.call, leg.begin is not None
    agent = str(100 + call.index % 50) if answered else ""
    return [
        ak, "acct-1", "1", agent, call_id(call), call.caller, call.callee,
        _text(call.start, tz), _text(call.start + timedelta(seconds=call.ring_s), tz),
        _text(leg.begin, tz), _text(leg.begin, tz), _text(leg.begin, tz), _text(leg.end, tz),
        "2" if answered else "1", agent or "3", call_type(call),
        CAUSES.get(call.status, "31") if leg.number == "-1" else "", leg.number, "1", "1" if answered else "", "",
    ]  # fmt: skip


def record_row(call: data.SynthCall, ak: str, tz: tzinfo) -> list[str]:
    """The recording-index row of an answered call, file names in Huawei's sample shapes."""
    day, agent = f"{call.start:%Y%m%d}", str(100 + call.index % 50)
    return [
        ak, "acct-1", "1", agent, call_id(call), call.caller, call.callee, _text(legs(call)[0].begin, tz),
        _text(legs(call)[-1].end, tz), f"/10/1/record/{agent}/{day}/{call.index:07d}.wav", str(call.index % 2),
        "success",
        f"X:\\17\\0\\{day}\\{agent}\\{call.index:07d}.V3", "1", "0" if call.direction == "inbound" else "1", "5",
        "1", "1",
    ]  # fmt: skip


def call_id(call: data.SynthCall) -> str:
    """Huawei-shaped call id (`<epoch seconds>-<n>`), unique per call."""
    return f"{int(call.start.timestamp())}-{call.index:04d}"


def _text(moment: datetime | None, tz: tzinfo) -> str:
    return "" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def call_rows(found: list[Leg], ak: str, tz: tzinfo) -> list[list[str]]:
    """Every `_call` row, in call order, then leg order."""
    return [call_row(leg, ak, tz) for leg in found]


def record_rows(found: list[Leg], ak: str, tz: tzinfo) -> list[list[str]]:
    """The recording-index row of each answered call whose talk starts in the window (its first leg)."""
    return [record_row(leg.call, ak, tz) for leg in found if leg.begin is not None and leg == legs(leg.call)[0]]


def render(rows: list[list[str]], header: list[str], style: Style) -> bytes:
    """One CSV member: comma, CRLF, RFC 4180 quoting, with the style's variations."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    extra = [f"x{i + 1}" for i in range(style.extra_columns)]
    if style.header:
        writer.writerow(header + [f"ext_{i + 1}" for i in range(style.extra_columns)])
    for number, row in enumerate(rows):
        cells = row + [f"{value}-{number}" for value in extra]
        if style.short_rows and number % 2:
            cells = cells[: len(header) - 3]
        if style.malformed and number == 0:
            cells = [*cells[:4], "", *cells[5:]]
        writer.writerow(cells)
    text = out.getvalue()
    if style.gbk:
        return text.replace("acct-1", "租户-1").encode("gbk")
    return (b"\xef\xbb\xbf" if style.bom else b"") + text.encode("utf-8")


def members(
    stamp: str, kind: str, rows: list[list[str]], part_rows: int | None
) -> Iterator[tuple[str, list[list[str]]]]:
    """Member names and their rows: `<stamp>_<kind>.csv`, or `_<kind>_1.csv`, ... past `part_rows`."""
    if not part_rows or len(rows) <= part_rows:
        yield f"{stamp}_{kind}.csv", rows
        return
    for part, first in enumerate(range(0, len(rows), part_rows), start=1):
        yield f"{stamp}_{kind}_{part}.csv", rows[first : first + part_rows]


def build_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A deflated zip with fixed entry times."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def corrupt(blob: bytes) -> bytes:
    """Flip bytes inside the first member's compressed data (the CRC check must catch it)."""
    start = 30 + int.from_bytes(blob[26:28], "little") + int.from_bytes(blob[28:30], "little")
    damaged = bytearray(blob)
    for offset in range(start + 2, min(start + 10, len(blob))):
        damaged[offset] ^= 0xFF
    return bytes(damaged)
