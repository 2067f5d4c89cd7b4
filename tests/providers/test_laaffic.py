"""Laaffic: known-answer vectors, chunking, concurrent paging, shifting pages, status codes, parsing.

Everything runs over real loopback HTTP against the emulator, which verifies signatures strictly.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cdrfetch.concurrency import Gate
from cdrfetch.errors import AuthError, ConfigError, DataError, ExitCode, TemporaryError, UnavailableError
from cdrfetch.providers.laaffic import codes, parse
from cdrfetch.providers.laaffic import protocol as proto
from cdrfetch.providers.laaffic.emulator.data import PLATFORM_TZ
from cdrfetch.providers.laaffic.provider import Laaffic
from cdrfetch.testing.contract import ProviderContract
from cdrfetch.windows import Window, zone
from tests.providers.laaffic_lab import NOW, SHANGHAI, UTC, Lab, Ticking, as_expected, days, fixed, local, oracle

KEY, SECRET = "bDqJFiq9", "7bz1lzh9"
DOC_STAMP = 1630468800
DOC_BODY = (
    b'{"current":1,"size":10,"params":{"strTime":"2022-01-31T00:00:00+08:00","endTime":"2022-02-01T00:00:00+08:00"}}'
)
MARCH = days((2024, 3, 1), (2024, 3, 8))


# --- the shared contract (real CLI, real clock) -----------------------------------------------------


class TestLaafficContract(ProviderContract):
    provider = "laaffic"
    main_route = "/number/record/queryPage"
    download_route = None  # records come inline in JSON pages; there is no file to download
    # A lone surrogate in a record's text is written as U+FFFD (the way undecodable bytes of an answer are).
    hostile_exits: ClassVar[dict[str, int]] = {**ProviderContract.hostile_exits, "lone_surrogate": ExitCode.OK}

    def emulator_knobs(self) -> dict[str, Any]:
        # the contract window is in 2024 and the emulator runs on the real clock: lift the
        # two-month retention, and give the window's day 250 calls (three pages through the CLI)
        return {"retention_days": 100_000, "heavy_dates": (self.window.start.astimezone(PLATFORM_TZ).date(),)}


def _pages(emulator: Any, window: Window = MARCH) -> int:
    return -(-oracle(emulator, window).total() // 100)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    bench = Lab(tmp_path)
    yield bench
    bench.close()


# --- signing: the spec's known-answer vectors (§3.2) -------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret", "stamp", "expected"),
    [
        (KEY, SECRET, "1630468800", "05d7a50893e22a5c4bb3216ae3396c7c"),  # L-1, the docs' example
        (KEY, SECRET, "1630468801", "f0c06cd1abdda2fd9dcad39eaef509cd"),  # L-2
        ("testKey1", "testSecret", "1700000000", "b27164e5523cfd49abda2c8232782faf"),  # L-3
    ],
)
def test_sign_vectors(key: str, secret: str, stamp: str, expected: str) -> None:
    assert proto.sign(key, secret, stamp) == expected


@pytest.mark.parametrize(
    ("instant", "stamp", "signature"),
    [
        (datetime(2021, 9, 1, 4, 0, tzinfo=UTC), "1630468800", "05d7a50893e22a5c4bb3216ae3396c7c"),
        (datetime(2021, 9, 1, 12, 0, tzinfo=zone("Asia/Shanghai")), "1630468800", "05d7a50893e22a5c4bb3216ae3396c7c"),
        (datetime(2023, 11, 14, 22, 13, 20, 999_000, tzinfo=UTC), "1700000000", None),
    ],
)
def test_signer_takes_the_timestamp_from_the_injected_clock(
    instant: datetime, stamp: str, signature: str | None
) -> None:
    auth = proto.LaafficAuth(KEY, SECRET, fixed(instant))
    prepared = auth(requests.Request("POST", "http://127.0.0.1/", data=b"{}").prepare())
    assert prepared.headers["Timestamp"] == stamp
    assert prepared.headers["Api-Key"] == KEY
    assert prepared.headers["Sign"] == (signature or proto.sign(KEY, SECRET, stamp))
    assert SECRET not in repr(auth)


NEGATIVE = {
    "secret before key": "16425418aa6a5b0ea72840ffa8e04510",
    "timestamp first": "5ff59003b6f1d38fba3417572b660e0a",
    "milliseconds in the hash": "3635806708a187957dda95e2f27130eb",
}


def _documented_request(url: str, sign: str, body: bytes = DOC_BODY) -> dict[str, Any]:
    headers = {"Content-Type": "application/json;charset=UTF-8", "Sign": sign, "Timestamp": str(DOC_STAMP)}
    response = requests.post(f"{url}/v3/number/record/queryPage", data=body, headers={**headers, "Api-Key": KEY})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    answer: dict[str, Any] = response.json()
    return answer


def test_emulator_accepts_the_documented_request(lab: Lab) -> None:
    lab.start(clock=fixed(datetime.fromtimestamp(DOC_STAMP, UTC)))
    answer = _documented_request(lab.url, "05d7a50893e22a5c4bb3216ae3396c7c")
    assert answer["status"] == "0"
    assert answer["data"]["total"] == 0 and answer["data"]["records"] == [] and answer["data"]["pages"] == 0


@pytest.mark.parametrize("variant", sorted(NEGATIVE))
def test_negative_vectors_are_refused_and_never_produced(lab: Lab, variant: str) -> None:
    lab.start(clock=fixed(datetime.fromtimestamp(DOC_STAMP, UTC)))
    assert _documented_request(lab.url, NEGATIVE[variant]) == {
        "status": "-1",
        "reason": "Abnormal account authentication",
    }
    assert NEGATIVE[variant] != proto.sign(KEY, SECRET, str(DOC_STAMP))


def test_upper_case_sign_is_accepted_but_never_sent(lab: Lab) -> None:
    lab.start(clock=fixed(datetime.fromtimestamp(DOC_STAMP, UTC)))
    assert _documented_request(lab.url, "05D7A50893E22A5C4BB3216AE3396C7C")["status"] == "0"
    assert proto.sign(KEY, SECRET, str(DOC_STAMP)).islower()


# --- the request --------------------------------------------------------------------------------


def test_first_request_is_byte_exact(lab: Lab) -> None:
    emulator = lab.start()
    lab.pull(lab.provider(), days((2024, 3, 1), (2024, 3, 2)))
    first = emulator.received[0]
    assert first.path == "/v3/number/record/queryPage"
    assert first.body == (
        b'{"current":1,"size":100,"params":{"strTime":"2024-03-01T00:00:00+08:00","endTime":"2024-03-02T00:00:00+08:00"}}'
    )
    assert first.header("Content-Type") == "application/json;charset=UTF-8"
    assert first.header("Api-Key") == KEY
    assert first.header("Timestamp") == str(int(NOW.timestamp()))
    assert first.header("Sign") == proto.sign(KEY, SECRET, str(int(NOW.timestamp())))


def test_every_request_and_retry_is_freshly_signed(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 2),))
    emulator.faults.fail_next(2, 503)
    emulator.override_next(1, "-18")
    lab.pull(lab.provider(clock=Ticking()), MARCH)
    stamps = [request.header("Timestamp") for request in emulator.received]
    assert len(emulator.received) >= 6 and len(set(stamps)) == len(stamps)
    for request in emulator.received:
        assert request.header("Sign") == proto.sign(KEY, SECRET, request.header("Timestamp") or "")


def test_base_url_without_v3_and_trailing_slash(lab: Lab) -> None:
    emulator = lab.start()
    rows = lab.pull(lab.provider(base_url=lab.url + "/"), MARCH)
    assert emulator.received[0].path == "/number/record/queryPage"
    assert as_expected(rows) == oracle(emulator, MARCH)


@pytest.mark.parametrize(
    ("tz", "start", "end"),
    [
        ("UTC", "2024-03-01T00:00:00+00:00", "2024-03-02T00:00:00+00:00"),
        ("America/New_York", "2024-03-01T00:00:00-05:00", "2024-03-02T00:00:00-05:00"),
    ],
)
def test_query_times_carry_the_profile_offset(lab: Lab, tz: str, start: str, end: str) -> None:
    lab.start()
    zone_ = zone(tz)
    window = Window(datetime(2024, 3, 1, tzinfo=zone_), datetime(2024, 3, 2, tzinfo=zone_), zone_)
    lab.pull(lab.provider(tz=tz), window)
    assert lab.bodies()[0]["params"] == {"strTime": start, "endTime": end}


def test_a_fractional_end_rounds_up_so_no_record_is_cut_off() -> None:
    chunk = Window(local(2024, 3, 1), local(2024, 3, 1, 10) + timedelta(microseconds=500), SHANGHAI)
    body = json.loads(proto.query_body(chunk, SHANGHAI, 2))
    assert body == {
        "current": 2,
        "size": 100,
        "params": {"strTime": "2024-03-01T00:00:00+08:00", "endTime": "2024-03-01T10:00:01+08:00"},
    }


# --- chunking -------------------------------------------------------------------------------------


def test_spec_chunk_example() -> None:
    window = days((2024, 1, 1), (2024, 3, 15))
    chunks = proto.local_chunks(window, SHANGHAI, 31)
    sent = [(proto.iso(c.start, SHANGHAI), proto.iso(c.end, SHANGHAI)) for c in chunks]
    assert sent == [
        ("2024-01-01T00:00:00+08:00", "2024-02-01T00:00:00+08:00"),
        ("2024-02-01T00:00:00+08:00", "2024-03-03T00:00:00+08:00"),
        ("2024-03-03T00:00:00+08:00", "2024-03-15T00:00:00+08:00"),
    ]


ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "UTC", "Australia/Lord_Howe"]


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 1, 1)),
    length=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=200)),
    tz_name=st.sampled_from(ZONES),
    span=st.integers(min_value=1, max_value=40),
)
@example(  # a chunk starting at local midnight of the 25-hour day when London leaves summer time
    start=datetime(2024, 6, 12, 22, 48),
    length=timedelta(days=137, seconds=720, microseconds=1),
    tz_name="Europe/London",
    span=1,
)
def test_chunks_cover_the_window_half_open_aligned_and_bounded(
    start: datetime, length: timedelta, tz_name: str, span: int
) -> None:
    tz = zone(tz_name)
    window = Window(start.replace(tzinfo=UTC), start.replace(tzinfo=UTC) + length, tz)
    chunks = proto.local_chunks(window, tz, span)
    assert chunks[0].start == window.start and chunks[-1].end == window.end
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.start
    for chunk in chunks:
        assert timedelta(0) < chunk.end - chunk.start <= timedelta(days=span)
        if chunk is not chunks[-1]:
            local_end = chunk.end.astimezone(tz)
            is_midnight = (local_end.hour, local_end.minute, local_end.second) == (0, 0, 0)
            assert is_midnight or chunk.end - chunk.start == timedelta(days=span)


def test_multi_chunk_window_follows_max_window_days(lab: Lab) -> None:
    emulator = lab.start()
    window = days((2024, 2, 1), (2024, 3, 20))  # 48 days: two chunks at 31, seven at 7
    rows_31 = lab.pull(lab.provider(), window)
    windows_31 = {(b["params"]["strTime"], b["params"]["endTime"]) for b in lab.bodies()}
    assert windows_31 == {
        ("2024-02-01T00:00:00+08:00", "2024-03-03T00:00:00+08:00"),
        ("2024-03-03T00:00:00+08:00", "2024-03-20T00:00:00+08:00"),
    }
    emulator.received.clear()
    rows_7 = lab.pull(lab.provider(max_window_days=7), window)
    assert len({b["params"]["strTime"] for b in lab.bodies()}) == 7
    assert as_expected(rows_31) == as_expected(rows_7) == oracle(emulator, window)
    assert len(rows_31) > 100  # several pages in the long chunk


def test_a_record_on_a_chunk_boundary_is_kept_once(lab: Lab) -> None:
    emulator = lab.start(end_inclusive=True, records_max=5)  # the server also returns startTime == endTime
    boundary = emulator.add_call(local(2024, 3, 2).astimezone(UTC))
    window = days((2024, 3, 1), (2024, 3, 3))
    seen_per_chunk = []
    for chunk in lab.provider(max_window_days=1).chunks(window):
        ids = [
            row["record_id"] for batch in lab.provider(max_window_days=1).fetch(chunk) for row in batch.data.to_pylist()
        ]
        seen_per_chunk.append(ids.count(boundary.callid))
    assert seen_per_chunk == [1, 1]  # both chunks' answers carry it ...
    rows = lab.pull(lab.provider(max_window_days=1), window)
    assert [row["record_id"] for row in rows].count(boundary.callid) == 1  # ... one run keeps it once
    assert len(rows) == len({row["record_id"] for row in rows}) == oracle(emulator, window).total()


@pytest.mark.parametrize("name", ["max_window_days", "concurrency"])
def test_non_positive_settings_are_refused(lab: Lab, name: str) -> None:
    lab.start()
    with pytest.raises(ConfigError, match=name):
        lab.provider(None, **{name: 0})


# --- pagination and concurrency ----------------------------------------------------------------------


def test_pages_are_fetched_concurrently_within_the_bound(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),), heavy_count=1150)
    emulator.faults.latency = 0.03
    rows = lab.pull(lab.provider(concurrency=3), MARCH)
    pages = [body["current"] for body in lab.bodies()]
    assert pages[0] == 1 and sorted(pages) == list(range(1, _pages(emulator) + 1)) and len(pages) > 10
    assert 2 <= emulator.peak_inflight <= 3
    assert as_expected(rows) == oracle(emulator, MARCH)
    keys = [(row["start_time"], row["record_id"]) for row in rows]
    assert keys == sorted(keys)  # the server's order, whatever order the pages arrived in


def test_concurrency_one_is_sequential_in_page_order(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),))
    emulator.faults.latency = 0.005
    lab.pull(lab.provider(concurrency=1), MARCH)
    assert [body["current"] for body in lab.bodies()] == list(range(1, _pages(emulator) + 1))
    assert emulator.peak_inflight == 1


def test_an_empty_window_is_one_request_and_no_batch(lab: Lab) -> None:
    emulator = lab.start(records_max=0)
    provider = lab.provider()
    assert [list(provider.fetch(chunk)) for chunk in provider.chunks(MARCH)] == [[]]
    assert len(emulator.received) == 1


@pytest.mark.parametrize("after_page", [1, 3])
def test_records_inserted_while_paging_are_neither_lost_nor_duplicated(lab: Lab, after_page: int) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 2), date(2024, 3, 5)), insert_during_paging=7,
                         insert_after_page=after_page)  # fmt: skip
    before = oracle(emulator, MARCH).total()
    rows = lab.pull(lab.provider(), MARCH)
    assert oracle(emulator, MARCH).total() == before + 7
    assert as_expected(rows) == oracle(emulator, MARCH)
    assert len({row["record_id"] for row in rows}) == len(rows)
    assert [body["current"] for body in lab.bodies()].count(1) == 2  # the re-check read the chunk again


def test_a_growing_page_count_is_followed(lab: Lab) -> None:
    emulator = lab.start(records_min=20, records_max=40, insert_during_paging=150)
    before = oracle(emulator, MARCH).total()
    rows = lab.pull(lab.provider(), MARCH)
    assert as_expected(rows) == oracle(emulator, MARCH)
    assert max(body["current"] for body in lab.bodies()) > -(-before // 100)


def test_a_total_that_never_settles_fails_temporarily(lab: Lab) -> None:
    lab.start(heavy_dates=(date(2024, 3, 2),), insert_during_paging=30, insert_repeat=100)
    with pytest.raises(TemporaryError, match="kept arriving") as caught:
        lab.pull(lab.provider(), MARCH)
    assert caught.value.exit_code == ExitCode.TEMPORARY


def test_an_overstated_total_is_accepted_with_a_warning(lab: Lab) -> None:
    emulator = lab.start(total_offset=3)
    provider = lab.provider()
    rows = lab.pull(provider, MARCH)
    assert as_expected(rows) == oracle(emulator, MARCH)
    assert any("distinct" in warning for warning in provider.client.summary.warnings)


def test_records_are_deduplicated_across_fetch_calls_of_one_run(lab: Lab) -> None:
    emulator = lab.start()
    provider = lab.provider()
    chunk = provider.chunks(MARCH)[0]
    first = [row for batch in provider.fetch(chunk) for row in batch.data.to_pylist()]
    again = [row for batch in provider.fetch(chunk) for row in batch.data.to_pylist()]
    assert len(first) == oracle(emulator, MARCH).total() and again == []


# --- declared totals: every page's `total` and `pages` agree with each other and with its records ----------


def test_an_absurd_page_count_is_refused_before_another_page_is_asked(lab: Lab) -> None:
    emulator = lab.start(declare={"pages": 10**7})
    with pytest.raises(DataError, match=r"page 1: declares 10000000 pages for a total of \d+ records") as caught:
        lab.pull(lab.provider(), MARCH)
    assert caught.value.exit_code == ExitCode.DATA and "report this answer" in str(caught.value)
    assert len(emulator.received) == 1  # nothing was planned from it


def test_a_consistent_but_absurd_total_is_refused(lab: Lab) -> None:
    emulator = lab.start(declare={"total": 10**9, "pages": 10**7})
    with pytest.raises(DataError, match=r"page 1: declares 1000000000 records, 10000000 pages where one chunk may ha"):
        lab.pull(lab.provider(), MARCH)
    assert len(emulator.received) == 1


def test_a_page_holding_more_than_it_was_asked_for_is_refused(lab: Lab) -> None:
    lab.start(heavy_dates=(date(2024, 3, 2),), serve_size=150)
    with pytest.raises(DataError, match=r"page 1: holds 150 records, more than the 100 asked for"):
        lab.pull(lab.provider(), MARCH)


def test_a_page_holding_more_than_its_total_leaves_is_refused_naming_it(lab: Lab) -> None:
    lab.start(heavy_dates=(date(2024, 3, 2),), declare={"total": 150, "pages": 2})  # the pages hold 250+
    with pytest.raises(DataError, match=r"2024-03-01_2024-03-08 page 2: holds 100 records where its total of 150"):
        lab.pull(lab.provider(concurrency=1), MARCH)


def test_a_zero_total_beside_records_is_not_an_empty_chunk(lab: Lab) -> None:
    lab.start(declare={"total": 0, "pages": 0})
    with pytest.raises(DataError, match=r"page 1: holds \d+ records where its total of 0 leaves 0"):
        lab.pull(lab.provider(), MARCH)


@pytest.mark.parametrize(
    ("data", "number", "expected"),
    [
        ({"total": 0, "pages": 0, "records": []}, 1, (0, 0)),
        ({"total": 250, "pages": 3, "records": [{}] * 50}, 3, (250, 3)),
        ({"total": "250", "records": [{}] * 100}, 1, (250, 3)),  # no `pages`: counted from the total
        ({"total": 250, "pages": 3, "records": []}, 9, (250, 3)),  # past the last page: empty is fine
        ({"total": 100 * codes.MAX_PAGES, "pages": codes.MAX_PAGES, "records": []}, 1, (10**7, 100_000)),
    ],
)
def test_page_declarations_that_agree_are_taken(data: dict[str, Any], number: int, expected: tuple[int, int]) -> None:
    total, pages, _ = codes.declared(data, f"laaffic x page {number}", number)
    assert (total, pages) == expected


@pytest.mark.parametrize(
    ("data", "number", "message"),
    [
        ({"total": 250, "pages": 2, "records": []}, 1, "declares 2 pages for a total of 250 records (3 pages of 100)"),
        ({"total": 0, "pages": 1, "records": []}, 1, "declares 1 pages for a total of 0 records"),
        ({"total": -1, "records": []}, 1, "declares a total of -1 records"),
        ({"total": 10**7 + 1, "records": []}, 1, "declares 10000001 records, 100001 pages where one chunk may have"),
        ({"total": 250, "pages": 3, "records": [{}] * 51}, 3, "holds 51 records where its total of 250 leaves 50"),
        ({"total": 250, "pages": 3, "records": [{}]}, 4, "holds 1 records where its total of 250 leaves 0"),
        ({"pages": 1, "records": [{}]}, 1, "declares 1 pages for a total of 0 records"),  # no total: 0
        ({"total": "1" * 5000, "records": []}, 1, "bad page counts"),
        ({"total": 1.5, "records": []}, 1, "bad page counts"),
        ({"total": 1, "records": {"a": 1}}, 1, "`records` is not a list"),
    ],
)
def test_page_declarations_that_contradict_themselves_are_refused(
    data: dict[str, Any], number: int, message: str
) -> None:
    with pytest.raises(DataError, match=re.escape(f"laaffic x page {number}: {message}")):
        codes.declared(data, f"laaffic x page {number}", number)


# --- throttling ---------------------------------------------------------------------------------------------


def test_throttling_backs_off_retries_and_lowers_concurrency(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),), heavy_count=1150)
    emulator.override_next(3, "-15")
    provider = lab.provider()
    rows = lab.pull(provider, MARCH)
    assert as_expected(rows) == oracle(emulator, MARCH)
    assert provider.gate.limit == 1  # halved on each throttled answer: 4 -> 2 -> 1 (and no lower)
    assert any("concurrency lowered to 2" in w for w in provider.client.summary.warnings)


def test_after_throttling_fewer_pages_are_in_flight(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),), heavy_count=1150)
    emulator.faults.latency = 0.02
    emulator.override_next(1, "-15")  # page 1 (alone) is throttled: the bound drops to 2 before the pool starts
    provider = lab.provider(concurrency=4)
    assert as_expected(lab.pull(provider, MARCH)) == oracle(emulator, MARCH)
    assert provider.gate.limit == 2 and emulator.peak_inflight <= 2


def test_http_429_also_lowers_concurrency(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),))
    emulator.faults.throttle_next(1, retry_after=0, route="queryPage")
    provider = lab.provider()
    assert as_expected(lab.pull(provider, MARCH)) == oracle(emulator, MARCH)
    assert provider.gate.limit == 2


def test_a_qps_limit_is_survived(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),), qps=3)
    provider = lab.provider(backoff=0.2, retries=6)
    assert as_expected(lab.pull(provider, MARCH)) == oracle(emulator, MARCH)
    assert provider.gate.limit < 4


def test_persistent_throttling_exits_temporary(lab: Lab) -> None:
    emulator = lab.start()
    emulator.override_next(100, "-15")
    with pytest.raises(TemporaryError, match="status -15") as caught:
        lab.pull(lab.provider(), MARCH)
    assert caught.value.exit_code == 75 and len(emulator.received) == 4  # 1 + retries (3)


def test_a_pull_recovers_its_concurrency_after_throttling(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Gate, "RECOVER_AFTER", 2)
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),), heavy_count=1150)
    emulator.override_next(1, "-15")
    provider = lab.provider(concurrency=4)
    assert as_expected(lab.pull(provider, MARCH)) == oracle(emulator, MARCH)
    assert any("concurrency lowered to 2" in w for w in provider.client.summary.warnings)
    assert provider.gate.limit == 4


# --- status codes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        ("-1", "api_secret"),
        ("-2", "allow-list"),
        ("-13", "locked"),
        ("-16", "clock"),
        ("-29", "workspace"),
        ("-30", "API key is disabled"),
        ("-31", "allow-list"),
        ("-32", "access to the number application"),
    ],
)
def test_auth_statuses_exit_77_with_a_hint_and_are_not_retried(lab: Lab, status: str, hint: str) -> None:
    emulator = lab.start()
    emulator.override_next(1, status)
    with pytest.raises(AuthError) as caught:
        lab.pull(lab.provider(), MARCH)
    assert caught.value.exit_code == 77 and hint in (caught.value.hint or "")
    assert f"status {status}" in caught.value.message and len(emulator.received) == 1


@pytest.mark.parametrize(
    ("knobs", "settings", "status"),
    [
        ({}, {"api_secret": "wrong-secret"}, "-1"),
        ({"api_key": "someoneElse"}, {"api_key": KEY}, "-1"),
        ({"ip_block": ("127.0.0.1",)}, {}, "-2"),
        ({"ip_allow": ("10.0.0.1",)}, {}, "-31"),
        ({"key_disabled": True}, {}, "-30"),
        ({"workspace_disabled": True}, {}, "-29"),
        ({"no_permission": True}, {}, "-32"),
    ],
)
def test_real_account_failures(lab: Lab, knobs: dict[str, Any], settings: dict[str, Any], status: str) -> None:
    lab.start(**knobs)
    with pytest.raises(AuthError, match=f"status {status}"):
        lab.pull(lab.provider(**settings), MARCH)


@pytest.mark.parametrize("offset", [timedelta(minutes=31), -timedelta(hours=2)])
def test_a_skewed_clock_is_reported_as_clock_skew(lab: Lab, offset: timedelta) -> None:
    emulator = lab.start()
    with pytest.raises(AuthError, match="status -16") as caught:
        lab.pull(lab.provider(clock=fixed(NOW + offset)), MARCH)
    assert "clock" in (caught.value.hint or "") and len(emulator.received) == 1


def test_a_clock_within_half_an_hour_is_accepted(lab: Lab) -> None:
    emulator = lab.start()
    assert as_expected(lab.pull(lab.provider(clock=fixed(NOW - timedelta(minutes=29))), MARCH)) == oracle(
        emulator, MARCH
    )


def test_system_errors_are_retried(lab: Lab) -> None:
    emulator = lab.start()
    emulator.override_next(2, "-18")
    assert as_expected(lab.pull(lab.provider(), MARCH)) == oracle(emulator, MARCH)


def test_persistent_system_errors_exit_69(lab: Lab) -> None:
    emulator = lab.start()
    emulator.override_next(100, "-18")
    with pytest.raises(UnavailableError, match="gave up after 4 attempts") as caught:
        lab.pull(lab.provider(), MARCH)
    assert caught.value.exit_code == 69 and len(emulator.received) == 4


@pytest.mark.parametrize("status", ["-22", "-11"])
def test_parameter_errors_show_the_request_without_the_signature(lab: Lab, status: str) -> None:
    emulator = lab.start()
    emulator.override_next(1, status)
    with pytest.raises(DataError) as caught:
        lab.pull(lab.provider(), MARCH)
    message = str(caught.value)
    assert caught.value.exit_code == 65 and f"POST {lab.url}/v3/number/record/queryPage" in message
    assert '{"current":1,"size":100,"params":{"strTime":"2024-03-01T00:00:00+08:00"' in message
    assert str(emulator.received[0].header("Sign")) not in message and SECRET not in message


def test_a_chunk_longer_than_laaffic_allows_is_refused_before_any_request(lab: Lab) -> None:
    emulator = lab.start()
    with pytest.raises(ConfigError, match=r"max_window_days.*out of range \(1 to 31\)") as caught:
        lab.pull(lab.provider(max_window_days=40), days((2024, 2, 1), (2024, 3, 20)))
    assert caught.value.exit_code == 78 and emulator.received == []


def test_records_older_than_retention_get_the_range_hint(lab: Lab) -> None:
    lab.start()
    with pytest.raises(ConfigError, match="status -25"):
        lab.pull(lab.provider(), days((2023, 12, 1), (2023, 12, 2)))


def test_an_unknown_status_is_not_retried(lab: Lab) -> None:
    emulator = lab.start()
    emulator.override_next(1, "-99")
    with pytest.raises(UnavailableError, match="status -99") as caught:
        lab.pull(lab.provider(), MARCH)
    assert caught.value.exit_code == 69 and len(emulator.received) == 1


@pytest.mark.parametrize("kind", ["503", "html", "truncated"])
def test_transient_failures_are_retried(lab: Lab, kind: str) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),))
    if kind == "503":
        emulator.faults.fail_next(2, 503, route="queryPage")
    elif kind == "html":
        emulator.html_next(2)
    else:
        emulator.truncate_next(2)
    assert as_expected(lab.pull(lab.provider(), MARCH)) == oracle(emulator, MARCH)
    assert len(emulator.received) == _pages(emulator) + 2


@pytest.mark.parametrize(("kind", "error", "text"), [("503", UnavailableError, "HTTP 503"),
                                                      ("html", UnavailableError, "base_url")])  # fmt: skip
def test_persistent_failures_exit_69(lab: Lab, kind: str, error: type[Exception], text: str) -> None:
    emulator = lab.start()
    if kind == "503":
        emulator.faults.fail_next(100, 503)
    else:
        emulator.html_next(100)
    with pytest.raises(error) as caught:
        lab.pull(lab.provider(), MARCH)
    assert text in str(caught.value) and len(emulator.received) == 4


def test_a_page_that_never_answers_in_time_makes_the_provider_unavailable(lab: Lab) -> None:
    lab.start(heavy_dates=(date(2024, 3, 3),), slow_seconds=0.4, slow_pages=(2,))
    with pytest.raises(UnavailableError, match="page 2: no answer") as caught:
        lab.pull(lab.provider(timeout=0.1, retries=1), MARCH)
    assert caught.value.exit_code == 69
    assert [body["current"] for body in lab.bodies()].count(2) == 2  # tried, retried, given up


def test_a_wrong_path_hints_at_base_url(lab: Lab) -> None:
    lab.start()
    with pytest.raises(ConfigError, match="HTTP 404") as caught:
        lab.pull(lab.provider(base_url=lab.url + "/v4"), MARCH)
    assert "/v3" in (caught.value.hint or "")


def test_http_403_is_an_auth_failure(lab: Lab) -> None:
    emulator = lab.start()
    emulator.faults.fail_next(1, 403)
    with pytest.raises(AuthError, match="HTTP 403"):
        lab.pull(lab.provider(), MARCH)


def test_a_bad_page_fails_the_whole_chunk_and_marks_nothing_seen(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),), heavy_count=1150, malformed=450)
    emulator.faults.latency = 0.01
    provider = lab.provider()
    chunk = provider.chunks(MARCH)[0]
    with pytest.raises(DataError, match=r"page 5 records\[50\]"):
        list(provider.fetch(chunk))
    emulator.knobs.malformed = None
    rows = [row for batch in provider.fetch(chunk) for row in batch.data.to_pylist()]
    assert as_expected(rows) == oracle(emulator, MARCH)


def test_no_secret_or_signature_reaches_a_log_line(lab: Lab) -> None:
    emulator = lab.start(heavy_dates=(date(2024, 3, 3),))
    emulator.faults.fail_next(1, 502)
    emulator.override_next(1, "-15")
    emulator.html_next(1)
    lab.pull(lab.provider(), MARCH)
    emulator.override_next(1, "-22")
    with pytest.raises(DataError) as caught:
        lab.pull(lab.provider(), days((2024, 3, 10), (2024, 3, 11)))
    signatures = {request.header("Sign") for request in emulator.received}
    text = "\n".join([*lab.logs.lines, str(caught.value)])
    assert lab.logs.lines and SECRET not in text
    assert not any(signature and signature in text for signature in signatures)


def test_check_reports_yesterday(lab: Lab) -> None:
    emulator = lab.start()
    answer = lab.provider().check()
    yesterday = days((2024, 3, 24), (2024, 3, 25))
    assert answer == f"Api-Key {KEY} accepted: {oracle(emulator, yesterday).total()} records on 2024-03-24"


# --- records: formats, field spellings, the worked example ------------------------------------------------------


SAMPLE = (
    '{"callid":"23101311543100378","number":"915027021995","type":"MOBILE","caller":"915027021995",'
    '"called":"915027021999","ccode":"91","country":"India","callSource":3,"callDuration":10,"chargedDuration":60,'
    '"startTime":"2024-01-01 09:00:00","endTime":"2024-01-01 09:00:10","pay":"0.012832","sipCode":"20",'
    '"recordingFileUrl":"","currency":"EUR"}'
)


def _row(record: dict[str, Any], tz: str = "Asia/Shanghai") -> dict[str, Any]:
    return parse.to_row(record, account=KEY, tz=zone(tz))


def test_the_worked_mapping_example() -> None:
    assert _row(json.loads(SAMPLE, parse_float=Decimal)) == {
        "provider": "laaffic",
        "account": KEY,
        "record_id": "23101311543100378",
        "call_id": "23101311543100378",
        "start_time": datetime(2024, 1, 1, 1, 0, 0, tzinfo=UTC),
        "end_time": datetime(2024, 1, 1, 1, 0, 10, tzinfo=UTC),
        "duration_s": 10,
        "billed_duration_s": 60,
        "caller": "915027021995",
        "callee": "915027021999",
        "direction": "outbound",
        "call_type": "3",
        "status": "20",
        "cost": Decimal("0.012832"),
        "currency": "EUR",
        "country": "India",
        "recording_url": None,
        "extra": '{"ccode":"91","number":"915027021995","type":"MOBILE"}',
    }


@settings(max_examples=100)
@given(st.lists(st.booleans(), min_size=200, max_size=200))
def test_field_names_match_whatever_their_case(flips: list[bool]) -> None:
    record = json.loads(SAMPLE, parse_float=Decimal)
    record.update({"QuoteExchange": "0.92", "SeptleRate": "0.011805", "SettlePay": "0.011805"})
    letters = iter(flips)
    shuffled = {"".join(c.swapcase() if next(letters, False) else c for c in k): v for k, v in record.items()}
    plain, mixed = _row(record), _row(shuffled)
    assert {k: v for k, v in mixed.items() if k != "extra"} == {k: v for k, v in plain.items() if k != "extra"}
    assert json.loads(mixed["extra"]) == {k: v for k, v in shuffled.items() if k.lower() in {
        "ccode", "number", "type", "quoteexchange", "septlerate", "settlepay"}}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01 09:00:00", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("2024-01-01T09:00:00", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("2024-01-01 09:00:00.1239", datetime(2024, 1, 1, 1, 0, 0, 123_000, tzinfo=UTC)),
        ("2024-01-01T09:00:00+08:00", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("2024-01-01T01:00:00Z", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("2024-01-01T03:30:00+0230", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        (1704070800, datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("1704070800", datetime(2024, 1, 1, 1, tzinfo=UTC)),
        (1704070800123, datetime(2024, 1, 1, 1, 0, 0, 123_000, tzinfo=UTC)),
        ("1704070800123", datetime(2024, 1, 1, 1, 0, 0, 123_000, tzinfo=UTC)),
        (Decimal("1704070800"), datetime(2024, 1, 1, 1, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_record_time_formats(value: Any, expected: datetime | None) -> None:
    assert parse.parse_time(value, SHANGHAI) == expected


@pytest.mark.parametrize("value", ["2024-02-30 10:00:00", "yesterday", "2024-01-01", True, 1.5, "17040708.5", [1]])
def test_unreadable_times_are_errors(value: Any) -> None:
    with pytest.raises(parse.FieldError):
        parse.parse_time(Decimal("1.5") if value == 1.5 else value, SHANGHAI)


@settings(max_examples=300)
@given(
    instant=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    tz_name=st.sampled_from(ZONES),
)
def test_every_time_format_reads_back_to_the_same_instant(instant: datetime, offset_minutes: int, tz_name: str) -> None:
    tz = zone(tz_name)
    exact = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
    seconds = exact.replace(microsecond=0)
    shifted = exact.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert parse.parse_time(shifted.isoformat(timespec="milliseconds"), tz) == exact
    assert parse.parse_time(exact.isoformat().replace("+00:00", "Z"), tz) == exact
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert parse.parse_time((exact - epoch) // timedelta(milliseconds=1), tz) == exact
    assert parse.parse_time(str((seconds - epoch) // timedelta(seconds=1)), tz) == seconds
    naive = exact.astimezone(tz)
    back = parse.parse_time(f"{naive:%Y-%m-%d %H:%M:%S}.{naive.microsecond // 1000:03d}", tz)
    assert back is not None and back.astimezone(tz).replace(tzinfo=None) == naive.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.012832", Decimal("0.012832")),
        (Decimal("0.1"), Decimal("0.100000")),
        ("0.0000005", Decimal("0.000000")),
        ("0.0000015", Decimal("0.000002")),
        (" 12 ", Decimal("12.000000")),
        ("", None),
        (None, None),
    ],
)
def test_pay_is_an_exact_decimal_rounded_half_even(value: Any, expected: Decimal | None) -> None:
    result = parse.parse_pay(value)
    assert result == expected and (result is None or str(result) == str(expected))


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True, "1e13", [1]])
def test_unreadable_amounts_are_errors(value: Any) -> None:
    with pytest.raises(parse.FieldError):
        parse.parse_pay(value)


@pytest.mark.parametrize(("value", "expected"), [(10, 10), ("10", 10), (Decimal("60"), 60), ("", None), (None, None)])
def test_integers_from_numbers_or_text(value: Any, expected: int | None) -> None:
    assert parse.parse_int(value) == expected


@pytest.mark.parametrize("value", ["10.5", Decimal("10.5"), "ten", True, [10]])
def test_non_integers_are_errors(value: Any) -> None:
    with pytest.raises(parse.FieldError):
        parse.parse_int(value)


@pytest.mark.parametrize(
    ("changes", "column", "expected"),
    [
        ({"callSource": 2}, "direction", "inbound"),
        ({"callSource": "3"}, "direction", "outbound"),
        ({"callSource": 1}, "direction", "unknown"),
        ({"callSource": ""}, "direction", "unknown"),
        ({"callSource": "2"}, "call_type", "2"),
        ({"currency": ""}, "currency", "USD"),
        ({"currency": " eur "}, "currency", "EUR"),
        ({"currency": "", "pay": ""}, "currency", None),
        ({"country": ""}, "country", "91"),
        ({"country": "", "ccode": ""}, "country", None),
        ({"recordingFileUrl": "https://r.invalid/x.mp3"}, "recording_url", "https://r.invalid/x.mp3"),
        ({"sipCode": ""}, "status", None),
        ({"caller": ""}, "caller", None),
        ({"endTime": ""}, "end_time", None),
        ({"recordingFileId": "abc", "newField": [1, 2]}, "extra", None),
    ],
)
def test_optional_field_rules(changes: dict[str, Any], column: str, expected: Any) -> None:
    record = {**json.loads(SAMPLE, parse_float=Decimal), **changes}
    row = _row(record)
    if column == "extra":
        assert json.loads(row["extra"])["recordingFileId"] == "abc" and json.loads(row["extra"])["newField"] == [1, 2]
    else:
        assert row[column] == expected


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"callid": ""}, "callid"),
        ({"startTime": None}, "startTime"),
        ({"startTime": "2024-13-01 00:00:00"}, "startTime"),
        ({"callDuration": "12.5"}, "callDuration"),
    ],
)
def test_mandatory_and_malformed_fields_are_errors(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(parse.FieldError, match=named):
        _row({**json.loads(SAMPLE), **changes})


def test_a_malformed_record_names_the_page_and_index(lab: Lab) -> None:
    lab.start(heavy_dates=(date(2024, 3, 3),), malformed=123)
    with pytest.raises(DataError, match=r"2024-03-01_2024-03-08 page 2 records\[23\] \(callid \d{17}\): `startTime`"):
        lab.pull(lab.provider(), MARCH)


@pytest.mark.parametrize("time_format", ["naive", "epoch_s", "epoch_ms", "iso"])
@pytest.mark.parametrize("variant", [{}, {"numbers_as_strings": True, "pay_as_number": True, "search_count": True}])
def test_every_served_format_gives_the_same_rows(lab: Lab, time_format: str, variant: dict[str, Any]) -> None:
    emulator = lab.start(time_format=time_format, **variant)
    rows = lab.pull(lab.provider(), MARCH)
    assert as_expected(rows) == oracle(emulator, MARCH)
    baseline = lab.start()
    plain = lab.pull(lab.provider(), MARCH)
    assert rows == plain and as_expected(plain) == oracle(baseline, MARCH)


@pytest.mark.parametrize("spelling", ["documented", "camel"])
def test_non_usd_quotes_keep_local_amounts_in_extra(lab: Lab, spelling: str) -> None:
    lab.start(currency_mode="eur", field_spelling=spelling, records_min=3)
    rows = lab.pull(lab.provider(), MARCH)
    names = ("QuoteExchange", "SeptleRate", "SettlePay") if spelling == "documented" else (
        "quoteExchange", "settleRate", "settlePay")  # fmt: skip
    assert rows and all(row["currency"] == "EUR" for row in rows)
    for row in rows:
        extra = json.loads(row["extra"])
        assert extra[names[0]] == "0.92"
        assert Decimal(extra[names[2]]) == (row["cost"] * Decimal("0.92")).quantize(Decimal("0.000001"))


def test_usd_accounts_default_the_currency(lab: Lab) -> None:
    lab.start(records_min=3)
    rows = lab.pull(lab.provider(), MARCH)
    assert rows and {row["currency"] for row in rows} == {"USD"}
    assert {row["direction"] for row in rows} == {"inbound", "outbound"}


def test_provider_declares_its_settings() -> None:
    names = {setting.name: setting for setting in Laaffic.all_settings()}
    assert names["api_secret"].secret and not names["api_key"].secret
    assert names["tz"].default == "Asia/Shanghai" and names["max_window_days"].default == 31
    assert names["concurrency"].default == 4 and names["base_url"].default == "https://api.laaffic.com/v3"
    assert Laaffic.account_setting == "api_key" and Laaffic.max_window == timedelta(days=31)


READERS = {name: parse.TimeReader(zone(name)) for name in ZONES}  # shared: the minute cache is exercised


@settings(max_examples=500)
@given(
    naive=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    tz_name=st.sampled_from(ZONES),
    separator=st.sampled_from([" ", "T"]),
)
def test_the_cached_zone_reader_agrees_with_parse_time(naive: datetime, tz_name: str, separator: str) -> None:
    text = naive.replace(microsecond=0).isoformat(sep=separator)
    assert READERS[tz_name](text) == parse.parse_time(text, zone(tz_name))
    neighbour = (naive.replace(microsecond=0) + timedelta(seconds=37)).isoformat(sep=separator)
    assert READERS[tz_name](neighbour) == parse.parse_time(neighbour, zone(tz_name))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-10 02:30:00", datetime(2024, 3, 10, 7, 30, tzinfo=UTC)),  # New York spring gap: read at -05:00
        ("2024-11-03 01:30:00", datetime(2024, 11, 3, 5, 30, tzinfo=UTC)),  # the repeated hour: its first reading
        ("2024-11-03 01:59:59", datetime(2024, 11, 3, 5, 59, 59, tzinfo=UTC)),
        ("2024-11-03 02:00:00", datetime(2024, 11, 3, 7, 0, tzinfo=UTC)),
    ],
)
def test_naive_times_across_dst_changes(text: str, expected: datetime) -> None:
    reader = parse.TimeReader(zone("America/New_York"))
    assert reader(text) == parse.parse_time(text, zone("America/New_York")) == expected
    assert reader(text) == expected  # from the cache
