from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdrfetch.errors import ConfigError, UsageError
from cdrfetch.windows import Window, day_window, from_options, split, zone

UTC = timezone.utc
SHANGHAI = zone("Asia/Shanghai")
NOW = datetime(2024, 3, 10, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


def test_date_day_is_yesterday_in_the_profile_zone() -> None:
    window = from_options(day="day", start=None, end=None, tz=SHANGHAI, now=NOW)
    assert window.start == datetime(2024, 3, 8, 16, tzinfo=UTC)
    assert window.end == datetime(2024, 3, 9, 16, tzinfo=UTC)
    assert window.relative == "day"
    assert window.label == "2024-03-09"


def test_yesterday_is_another_name_for_day() -> None:
    assert from_options(day="Yesterday", start=None, end=None, tz=SHANGHAI, now=NOW) == from_options(
        day="day", start=None, end=None, tz=SHANGHAI, now=NOW
    )


def test_default_is_day_and_today_and_explicit_dates() -> None:
    assert from_options(day=None, start=None, end=None, tz=UTC, now=NOW).label == "2024-03-09"
    assert from_options(day="today", start=None, end=None, tz=UTC, now=NOW).label == "2024-03-10"
    explicit = from_options(day="2024-02-29", start=None, end=None, tz=UTC, now=NOW)
    assert (explicit.start, explicit.relative) == (datetime(2024, 2, 29, tzinfo=UTC), None)


def test_from_to_are_half_open_and_read_in_the_zone() -> None:
    window = from_options(day=None, start="2024-01-01", end="2024-01-08 12:00", tz=SHANGHAI, now=NOW)
    assert window.start == datetime(2023, 12, 31, 16, tzinfo=UTC)
    assert window.end == datetime(2024, 1, 8, 4, tzinfo=UTC)
    assert window.contains(window.start) and not window.contains(window.end)
    assert window.label == "20240101T000000_20240108T120000"


def test_iso_offsets_win_over_the_zone() -> None:
    window = from_options(day=None, start="2024-01-01T00:00:00Z", end="2024-01-02T00:00:00+00:00", tz=SHANGHAI, now=NOW)
    assert window.start == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [("day", "2024-01-01", "2024-01-02"), (None, "2024-01-01", None), ("last week", None, None), (None, "x", "y")],
)
def test_bad_window_options_are_usage_errors(day: str | None, start: str | None, end: str | None) -> None:
    with pytest.raises(UsageError) as caught:
        from_options(day=day, start=start, end=end, tz=UTC, now=NOW)
    assert caught.value.hint


def test_reversed_window_is_refused() -> None:
    with pytest.raises(UsageError):
        from_options(day=None, start="2024-01-02", end="2024-01-01", tz=UTC, now=NOW)


def test_zone_accepts_names_and_offsets_and_rejects_garbage() -> None:
    assert zone("+08:00").utcoffset(None) == timedelta(hours=8)
    assert zone("UTC-5").utcoffset(None) == timedelta(hours=-5)
    assert zone("UTC") is UTC
    with pytest.raises(ConfigError):
        zone("Mars/Olympus")


def test_local_days_cover_every_overlapped_date() -> None:
    window = Window(datetime(2024, 1, 1, 15, tzinfo=UTC), datetime(2024, 1, 2, 17, tzinfo=UTC))
    assert window.local_days(SHANGHAI) == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert day_window(date(2024, 1, 1), SHANGHAI).local_days(SHANGHAI) == [date(2024, 1, 1)]


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
    st.integers(min_value=1, max_value=400 * 24),
    st.integers(min_value=1, max_value=40 * 24),
)
def test_split_tiles_the_window_exactly(start: datetime, hours: int, longest: int) -> None:
    window = Window(start.replace(tzinfo=UTC), start.replace(tzinfo=UTC) + timedelta(hours=hours))
    chunks = split(window, timedelta(hours=longest))
    assert chunks[0].start == window.start and chunks[-1].end == window.end
    assert all(a.end == b.start for a, b in itertools.pairwise(chunks))
    assert all(c.end - c.start <= timedelta(hours=longest) for c in chunks)
