"""Deterministic synthetic CDRs: the same seed, account and day always give the same calls.

Calls are generated per local calendar day, so any window (however it is chunked) sees the same
calls: the union of the days it overlaps, filtered to calls starting inside it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal

from cdrfetch.windows import Window

DIRECTIONS = ("outbound", "inbound", "internal")
HANGUP = ("NORMAL_CLEARING", "USER_BUSY", "NO_ANSWER", "CALL_REJECTED", "ORIGINATOR_CANCEL")
COUNTRIES = ("CN", "US", "GB", "IN", "BR", "SG")


@dataclass(frozen=True)
class SynthCall:
    """One synthetic call. Emulators render it in their provider's own format."""

    call_id: str
    caller: str
    callee: str
    start: datetime  # UTC, whole seconds
    duration_s: int
    ring_s: int
    direction: str
    status: str
    cost: Decimal  # 6 decimal places
    country: str
    index: int  # position within its day

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)


def rng(*parts: object) -> random.Random:
    """A PRNG seeded from the SHA-256 of the parts: stable across runs and Python versions."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def phone(r: random.Random) -> str:
    """A number in one of the shapes CDRs carry: mobile, fixed-line or E.164."""
    kind = r.random()
    if kind < 0.5:
        return f"1{r.choice('3456789')}{r.randrange(10**9):09d}"
    if kind < 0.8:
        return f"0{r.randrange(10, 999)}{r.randrange(10**7):07d}"
    return f"+{r.choice(('1', '44', '86', '91'))}{r.randrange(10**9, 10**10)}"


def calls_for_day(
    seed: int, account: str, day: date, tz: tzinfo, *, rows_min: int = 5, rows_max: int = 40
) -> list[SynthCall]:
    """The calls of one local day, sorted by start time."""
    r = rng(seed, account, day.isoformat())
    midnight = datetime.combine(day, time(), tzinfo=tz).astimezone(timezone.utc)
    seconds = int(
        (
            datetime.combine(day + timedelta(days=1), time(), tzinfo=tz) - datetime.combine(day, time(), tzinfo=tz)
        ).total_seconds()
    )
    starts = sorted(r.randrange(seconds) for _ in range(r.randint(rows_min, rows_max)))
    return [_call(r, account, day, i, midnight + timedelta(seconds=offset)) for i, offset in enumerate(starts)]


def _call(r: random.Random, account: str, day: date, index: int, start: datetime) -> SynthCall:
    answered = r.random() < 0.8
    duration = r.randint(1, 3600) if answered else 0
    return SynthCall(
        call_id=hashlib.md5(f"{account}|{day}|{index}".encode()).hexdigest()[:20],
        caller=phone(r),
        callee=phone(r),
        start=start,
        duration_s=duration,
        ring_s=r.randint(0, 30),
        direction=r.choice(DIRECTIONS),
        status=HANGUP[0] if answered else r.choice(HANGUP[1:]),
        cost=(Decimal(duration) * Decimal("0.0015")).quantize(Decimal("0.000001")),
        country=r.choice(COUNTRIES),
        index=index,
    )


def calls_between(seed: int, account: str, start: datetime, end: datetime, tz: tzinfo, **sizes: int) -> list[SynthCall]:
    """Every call of the days overlapping `[start, end)` that starts inside it."""
    return [
        call
        for day in Window(start, end).local_days(tz)
        for call in calls_for_day(seed, account, day, tz, **sizes)
        if start <= call.start < end
    ]
