"""Time windows: --date / --from / --to -> a tz-aware, half-open Window; chunking.

A Window is `[start, end)` in absolute time. It remembers the zone it was expressed in (for
naming and for providers that send local times) and, for `--date day`, that the user asked for the
provider's own notion of "yesterday" (`relative="day"`), which some protocols can send literally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cdrfetch.errors import ConfigError, UsageError

UTC = timezone.utc
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")


@dataclass(frozen=True)
class Window:
    """A half-open interval `[start, end)` of aware datetimes, plus the zone it was asked in."""

    start: datetime
    end: datetime
    tz: tzinfo = UTC
    relative: str | None = None  # "day" when the user asked for the provider's "yesterday"
    name: str | None = None  # fixed output label (e.g. for --since-last, whose end moves)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Window bounds must be timezone-aware")
        if self.end <= self.start:
            start, end = (moment.astimezone(self.tz).isoformat() for moment in (self.start, self.end))
            raise UsageError(f"empty window: {start} .. {end}", "--to must be later than --from")

    def contains(self, instant: datetime) -> bool:
        """True when `instant` lies in `[start, end)`."""
        return self.start <= instant < self.end

    @property
    def label(self) -> str:
        """Deterministic name for output files: `2024-01-01` or `<start>_<end>`."""
        if self.name:
            return self.name
        start, end = self.start.astimezone(self.tz), self.end.astimezone(self.tz)
        if _is_midnight(start) and _is_midnight(end):
            if end.date() - start.date() == timedelta(days=1):
                return start.date().isoformat()
            return f"{start.date().isoformat()}_{end.date().isoformat()}"
        return f"{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}"

    def local_days(self, tz: tzinfo) -> list[date]:
        """Every calendar date in `tz` that the window overlaps."""
        first = self.start.astimezone(tz).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(tz).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def zone(name: str) -> tzinfo:
    """A zone from an IANA name (`Asia/Shanghai`) or a fixed offset (`+08:00`, `UTC+8`)."""
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    match = _OFFSET.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}",
            "use an IANA name such as Asia/Shanghai or an offset such as +08:00",
        ) from None


def day_window(day: date, tz: tzinfo, relative: str | None = None) -> Window:
    """The local calendar day `day` in `tz` as a window."""
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return Window(start.astimezone(UTC), end.astimezone(UTC), tz, relative)


def parse_instant(text: str, tz: tzinfo, *, option: str) -> datetime:
    """`2024-01-01`, `2024-01-01 08:00[:00]` or ISO-8601 with offset -> aware datetime."""
    cleaned = text.strip().replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise UsageError(
            f"{option}: cannot read {text!r} as a date or time",
            "use YYYY-MM-DD, 'YYYY-MM-DD HH:MM' or ISO-8601 with an offset",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def from_options(
    *,
    day: str | None,
    start: str | None,
    end: str | None,
    tz: tzinfo,
    now: datetime,
) -> Window:
    """Resolve the CLI's --date / --from / --to into one Window (default: --date day)."""
    if day and (start or end):
        raise UsageError("--date cannot be combined with --from/--to", "use one or the other")
    if start or end:
        if not (start and end):
            raise UsageError("--from and --to go together", "give both, e.g. --from 2024-01-01 --to 2024-01-08")
        first = parse_instant(start, tz, option="--from")
        last = parse_instant(end, tz, option="--to")
        if last <= first:  # named as the user wrote them: the zone they are read in may not be known yet
            raise UsageError(f"empty window: --from {start} is not before --to {end}", "--to must be later than --from")
        return Window(first.astimezone(UTC), last.astimezone(UTC), tz)
    today = now.astimezone(tz).date()
    keyword = (day or "day").strip().lower()
    if keyword in ("day", "yesterday"):
        return day_window(today - timedelta(days=1), tz, relative="day")
    if keyword == "today":
        return day_window(today, tz)
    try:
        return day_window(date.fromisoformat(keyword), tz)
    except ValueError:
        raise UsageError(f"--date: cannot read {day!r}", "use day (or yesterday), today or YYYY-MM-DD") from None


def split(window: Window, longest: timedelta | None) -> list[Window]:
    """Cut `window` into consecutive chunks no longer than `longest` (None: one chunk)."""
    if longest is None or window.end - window.start <= longest:
        return [window]
    chunks: list[Window] = []
    cursor = window.start
    while cursor < window.end:
        stop = min(cursor + longest, window.end)
        chunks.append(replace(window, start=cursor, end=stop, relative=None, name=None))
        cursor = stop
    return chunks


def _is_midnight(value: datetime) -> bool:
    return value.timetz().replace(tzinfo=None) == time()


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `6h`, `2d` or plain seconds -> timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    cleaned = text.strip().lower()
    try:
        if cleaned[-1:] in units:
            return timedelta(seconds=float(cleaned[:-1]) * units[cleaned[-1]])
        return timedelta(seconds=float(cleaned))
    except ValueError:
        raise ConfigError(f"cannot read duration {text!r}", "use e.g. 90s, 30m, 6h or 2d") from None
