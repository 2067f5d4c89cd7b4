"""Synthetic DMA billing records for the Polycom emulator: calls and conferences, generated per hour.

Records are generated per UTC hour from (seed, user, hour), so any window, however it is chunked,
sees the same records: those of the hours around it whose start lies inside it. A record never
starts more than an hour after its generating hour, so one hour of look-back is enough.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cdrfetch.sandbox.data import rng

CALL_TYPES = ("PT-PT", "VMR", "VEQ", "VSC-hunt group", "VSC-fwd busy", "VMR-subscribe only", "VMR-Lync AVMCU")
FAILURES = ("", "", "", "", "486:BUSY HERE", "408:REQUEST TIMEOUT")
CLUSTERS = ("dma-east", "dma-west")


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
