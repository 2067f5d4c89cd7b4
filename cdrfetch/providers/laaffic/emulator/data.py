"""Laaffic's deterministic synthetic number call records and their JSON rendering.

Each UTC+8 day is generated from a PRNG seeded with sha256(seed | api_key | date), so any window
always sees the same records however it is chunked (specs/laaffic.md §8.5).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from cdrfetch.sandbox.data import rng

PLATFORM_TZ = timezone(timedelta(hours=8))
COUNTRIES = (("91", "India"), ("1", "United States"), ("44", "United Kingdom"), ("63", "Philippines"))
SIP_CODES = ("20", "200", "486", "487", "480", "603")
HANGUPS = ("normal hangup", "callee busy", "no answer", "caller cancelled", "call rejected")
SIX = Decimal("0.000001")
EUR_RATE = Decimal("0.92")


@dataclass(frozen=True)
class LaafficCall:
    """One synthetic record, rendered by `render` in the knobs' format."""

    callid: str
    number: str
    number_type: str
    caller: str
    called: str
    ccode: str
    country: str
    source: int  # 2 incoming, 3 outgoing
    duration: int
    charged: int
    start: datetime  # UTC, whole seconds
    rate: Decimal
    pay: Decimal
    sip: str
    hangup: str
    recording: bool

    @property
    def end(self) -> datetime:
        """Start plus the talk time."""
        return self.start + timedelta(seconds=self.duration)

    @property
    def key(self) -> tuple[datetime, str]:
        """The server's sort order: start time, then callid."""
        return self.start, self.callid


@dataclass
class Formats:
    """How records are rendered (spec §8.5 format knobs)."""

    time_format: str = "naive"  # naive | epoch_s | epoch_ms | iso
    field_spelling: str = "documented"  # documented | camel
    numbers_as_strings: bool = False
    pay_as_number: bool = False
    currency_mode: str = "usd"  # usd | eur

    def key(self) -> tuple[Any, ...]:
        """Everything that changes the rendered bytes (part of the emulator's cache key)."""
        return (self.time_format, self.field_spelling, self.numbers_as_strings, self.pay_as_number, self.currency_mode)


def number_pool(seed: int, api_key: str) -> list[tuple[str, str, int]]:
    """The account's rented numbers: (number, MOBILE/FIXED, index into COUNTRIES)."""
    r = rng(seed, api_key, "numbers")
    pool = []
    for _ in range(4):
        country = r.randrange(len(COUNTRIES))
        pool.append((f"{COUNTRIES[country][0]}{r.randrange(10**9, 10**10)}", r.choice(("MOBILE", "FIXED")), country))
    return pool


def day_calls(seed: int, api_key: str, day: date, count: tuple[int, int] | int) -> list[LaafficCall]:
    """The records of one UTC+8 day, in server order. `count` is a (min, max) range or exact."""
    r = rng(seed, api_key, day.isoformat())
    n = count if isinstance(count, int) else r.randint(*count)
    midnight = datetime.combine(day, time(), tzinfo=PLATFORM_TZ).astimezone(timezone.utc)
    offsets = sorted(r.randrange(86_400) for _ in range(n))
    pool = number_pool(seed, api_key)
    return [make_call(r, pool, midnight + timedelta(seconds=s), i) for i, s in enumerate(offsets)]


def make_call(r: random.Random, pool: list[tuple[str, str, int]], start: datetime, sequence: int) -> LaafficCall:
    """One record starting at `start`; callid = yyMMddHHmmss (UTC+8) + 5-digit sequence."""
    number, number_type, home = r.choice(pool)
    source = r.choice((2, 3))
    far = r.randrange(len(COUNTRIES))
    other = f"{COUNTRIES[far][0]}{r.randrange(10**9, 10**10)}"
    caller, called = (other, number) if source == 2 else (number, other)
    ccode, country = COUNTRIES[home if source == 2 else far]
    duration = 0 if r.random() < 0.15 else r.randint(1, 600)
    charged = math.ceil(duration / 60) * 60
    rate = (Decimal(r.randint(1_000, 90_000)) * SIX).quantize(SIX)
    callid = start.astimezone(PLATFORM_TZ).strftime("%y%m%d%H%M%S") + f"{sequence % 100_000:05d}"
    return LaafficCall(
        callid, number, number_type, caller, called, ccode, country, source, duration, charged, start, rate,
        (Decimal(charged) / 60 * rate).quantize(SIX), r.choice(SIP_CODES), r.choice(HANGUPS), r.random() < 0.2,
    )  # fmt: skip


def render_time(instant: datetime, time_format: str) -> str | int:
    """A record time in one of the formats accounts may see."""
    if time_format == "epoch_s":
        return int(instant.timestamp())
    if time_format == "epoch_ms":
        return int(instant.timestamp()) * 1000
    local = instant.astimezone(PLATFORM_TZ)
    return local.isoformat(timespec="seconds") if time_format == "iso" else f"{local:%Y-%m-%d %H:%M:%S}"


def render(call: LaafficCall, formats: Formats, app_id: str, *, broken: bool = False) -> bytes:
    """The record as compact JSON bytes (pre-rendered once per query, sliced per page)."""
    number: Any = str if formats.numbers_as_strings else int
    pay: Any = float(call.pay) if formats.pay_as_number else f"{call.pay:f}"
    record: dict[str, Any] = {
        "callid": call.callid,
        "number": call.number,
        "type": call.number_type,
        "caller": call.caller,
        "called": call.called,
        "ccode": call.ccode,
        "country": call.country,
        "callSource": number(call.source),
        "callDuration": number(call.duration),
        "chargedDuration": number(call.charged),
        "startTime": "2024-02-30 25:61:00" if broken else render_time(call.start, formats.time_format),
        "endTime": render_time(call.end, formats.time_format),
        "pay": pay,
        "sipCode": call.sip,
        "recordingFileUrl": f"https://recordings.invalid/{call.callid}.mp3" if call.recording else "",
        "hangupReason": call.hangup,
        "appId": app_id,
        "chargedPeriod": "60+60",
        "customerRate": f"{call.rate:f}",
        **_currency_fields(call, formats),
    }
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _currency_fields(call: LaafficCall, formats: Formats) -> dict[str, str]:
    names = ("QuoteExchange", "SeptleRate", "SettlePay")
    if formats.field_spelling == "camel":
        names = ("quoteExchange", "settleRate", "settlePay")
    if formats.currency_mode != "eur":
        return {"currency": "", **dict.fromkeys(names, "")}
    local = ((call.rate * EUR_RATE).quantize(SIX), (call.pay * EUR_RATE).quantize(SIX))
    return {"currency": "EUR", names[0]: f"{EUR_RATE:f}", names[1]: f"{local[0]:f}", names[2]: f"{local[1]:f}"}
