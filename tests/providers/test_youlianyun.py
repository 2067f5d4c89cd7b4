"""Youlianyun: the contract suite, every known-answer vector of the spec, and the protocol's corners.

Everything runs over real loopback HTTP against the emulator, which verifies signatures strictly.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdrfetch.client import DAMAGED_DOWNLOADS
from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, DataError, ExitCode, UnavailableError
from cdrfetch.providers.youlianyun import codes
from cdrfetch.providers.youlianyun.emulator import APP_ID, SID, TOKEN, YoulianyunEmulator, files
from cdrfetch.providers.youlianyun.provider import YoulianyunAuth, signature, timestamp
from cdrfetch.records import record_id
from cdrfetch.sandbox.server import Emulator, SandboxServer
from cdrfetch.testing.contract import ProviderContract
from cdrfetch.windows import Window, from_options
from tests.providers.youlianyun_harness import (
    SHANGHAI,
    VECTOR_NOW,
    day,
    expected,
    fixed,
    parse_file,
    provider_for,
    pull,
    requests_to,
    ticking,
)

BILL = "/billList"
FILE = "/fileserver/file"


# ---- the shared contract ---------------------------------------------------------------------


class TestYoulianyunContract(ProviderContract):
    provider = "youlianyun"
    main_route = BILL
    download_route = FILE

    # provider answers through the real CLI, on the contract's fixtures

    @pytest.mark.parametrize(
        ("knobs", "code", "hint"),
        [
            ({"accept_body": "wrapped"}, ExitCode.CONFIG, "body_style"),
            ({"date_formats": "compact"}, ExitCode.CONFIG, "date_style"),
            ({"resp_error": ["100699", 100]}, ExitCode.UNAVAILABLE, "run again later"),
            ({"account_state": "101109"}, ExitCode.AUTH, "support"),
            ({"bad_token": True}, ExitCode.OK, "does not match the download token"),
        ],
    )
    def test_provider_answers_exit_codes(
        self, emulator: Emulator, profile: Path, knobs: dict[str, Any], code: int, hint: str
    ) -> None:
        assert isinstance(emulator, YoulianyunEmulator)
        emulator.configure(**knobs)
        result = self.pull(profile, "-o", "-", "--format", "csv")
        assert result.exit_code == code, result.stderr
        assert hint in result.stderr


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> YoulianyunEmulator:
    return YoulianyunEmulator(clock=fixed())


@pytest.fixture
def server(emulator: YoulianyunEmulator) -> Any:
    with SandboxServer(emulator) as running:
        yield running


OCT12 = day("2015-10-12")


# ---- §3.2 known-answer vectors ---------------------------------------------------------------

Y4_SID = "77df6f3a6d0c7b8e6b2946f48d2f72b0"
Y6_SID = "e03bc9106c6ed0eaebfce8c368fdcd48"
AUTHORIZATION_VECTORS = [  # Y-1/Y-2, Y-3, Y-4, Y-5, Y-6: (accountSid, ts, Authorization)
    (SID, "20151013160756", "MTc4NGZkNjJhZTM1NGExZWNhNTRmOGIzNGU1YTliYWY6MjAxNTEwMTMxNjA3NTY="),
    ("a" * 32, "20240102030405", "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE6MjAyNDAxMDIwMzA0MDU="),
    (
        "77df6f3a6d0c7b8e6b2946f48d2f72b0",
        "20140628113352",
        "NzdkZjZmM2E2ZDBjN2I4ZTZiMjk0NmY0OGQyZjcyYjA6MjAxNDA2MjgxMTMzNTI=",
    ),
    (
        "77df6f3a6d0c7b8e6b2946f48d2f72b0",
        "20140628114456",
        "NzdkZjZmM2E2ZDBjN2I4ZTZiMjk0NmY0OGQyZjcyYjA6MjAxNDA2MjgxMTQ0NTY=",
    ),
    (
        "e03bc9106c6ed0eaebfce8c368fdcd48",
        "20140623171632",
        "ZTAzYmM5MTA2YzZlZDBlYWViZmNlOGMzNjhmZGNkNDg6MjAxNDA2MjMxNzE2MzI=",
    ),
]
SIG_VECTORS = [  # Y-2, Y-3: (accountSid, authToken, ts, sig)
    (SID, TOKEN, "20151013160756", "87BC2AF87E4F19425D9C60B2B1D7270C"),
    ("a" * 32, "b" * 32, "20240102030405", "95CF4A867C369291F230C344AED77EF4"),
]


def test_timestamp_vector_is_utc_plus_8_on_a_24_hour_clock() -> None:
    assert timestamp(VECTOR_NOW) == "20151013160756"
    assert timestamp(VECTOR_NOW.astimezone(timezone(timedelta(hours=-5)))) == "20151013160756"


@pytest.mark.parametrize(("sid", "ts", "authorization"), AUTHORIZATION_VECTORS)
def test_authorization_vectors(sid: str, ts: str, authorization: str) -> None:
    assert signature(sid, "any-token", ts)[1] == authorization


@pytest.mark.parametrize(("sid", "token", "ts", "sig"), SIG_VECTORS)
def test_sig_vectors(sid: str, token: str, ts: str, sig: str) -> None:
    assert signature(sid, token, ts)[0] == sig


def test_signer_puts_sig_in_the_query_and_a_bare_authorization_header() -> None:
    prepared = requests.Request("POST", "https://h/2014-06-30/Accounts/x/billList", data=b"{}").prepare()
    signed = YoulianyunAuth(SID, TOKEN, fixed())(prepared)
    assert signed.url == "https://h/2014-06-30/Accounts/x/billList?sig=87BC2AF87E4F19425D9C60B2B1D7270C"
    assert signed.headers["Authorization"] == AUTHORIZATION_VECTORS[0][2]


NEGATIVE_VECTORS = [  # (variant, ts sent, sig sent, answer) with the clock at VECTOR_NOW
    ("lower-case hex", "20151013160756", "87bc2af87e4f19425d9c60b2b1d7270c", "101116"),
    ("token and sid swapped", "20151013160756", "CC95113A4B92EE8A0B817508216ABC15", "101116"),
    ("12-hour clock", "20151013040756", "06ACCAD6D4E6DD588D4AA9A47605886F", "101106"),
    ("host zone UTC", "20151013080756", "A16449C7DA4E7EC802BCF014265B8E72", "101106"),
]


def raw_bill_list(server: SandboxServer, ts: str, sig: str | None, **kwargs: Any) -> dict[str, Any]:
    """POST billList by hand (no cdrfetch code) and return the JSON answer."""
    headers = {"Accept": "application/json", "Content-Type": "application/json;charset=utf-8"}
    headers["Authorization"] = kwargs.pop("authorization", base64.b64encode(f"{SID}:{ts}".encode()).decode())
    path = kwargs.pop("path", f"/2014-06-30/Accounts/{SID}/billList")
    body = kwargs.pop("body", {"appId": APP_ID, "date": "day"})
    query = "" if sig is None else f"?sig={sig}"
    response = requests.post(f"{server.url}{path}{query}", data=json.dumps(body), headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.parametrize(("variant", "ts", "sig", "answer"), NEGATIVE_VECTORS)
def test_negative_vectors_are_rejected_and_never_produced(
    server: SandboxServer, variant: str, ts: str, sig: str, answer: str
) -> None:
    assert raw_bill_list(server, ts, sig)["respCode"] == answer
    assert sig not in signature(SID, TOKEN, timestamp(VECTOR_NOW))


def test_conformance_request_of_section_2_5_gets_the_2015_10_12_file(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    with provider_for(server, fixed()) as provider:
        links = provider.bill_list("day")
    sent = requests_to(emulator, BILL)[0]
    assert sent.target == f"/2014-06-30/Accounts/{SID}/billList?sig=87BC2AF87E4F19425D9C60B2B1D7270C"
    assert sent.body == b'{"appId":"950a97bce77b885b747536a1e3887465","date":"day"}'
    assert sent.header("content-length") == "57"
    assert sent.header("authorization") == "MTc4NGZkNjJhZTM1NGExZWNhNTRmOGIzNGU1YTliYWY6MjAxNTEwMTMxNjA3NTY="
    assert sent.header("accept") == "application/json"
    assert sent.header("content-type") == "application/json;charset=utf-8"
    body = requests.get(links[0][0] + "&token=" + links[0][1], timeout=5).content
    assert body == files.render(emulator.rows(date(2015, 10, 12)), files.FileFormat())


def test_wrapped_body_is_69_bytes(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    with provider_for(server, fixed(), body_style="wrapped") as provider:
        provider.bill_list("day")
    sent = requests_to(emulator, BILL)[0]
    assert sent.body == b'{"appBill":{"appId":"950a97bce77b885b747536a1e3887465","date":"day"}}'
    assert len(sent.body) == 69


# ---- §6 worked mapping example ---------------------------------------------------------------

WORKED_FILE = (
    "ClientId,Callee,startTime,duration,type\r\n"
    "60000000000001,13800138000,2015-10-12 16:15:12,35,0\r\n"
    "60000000000001,13800138000,2015-10-12 16:15:12,35,0\r\n"
    "60000000000002,60000000000003,2015-10-12 9:05:07,0,1\r\n"
)


def test_worked_mapping_example(tmp_path: Path) -> None:
    from tests.providers.youlianyun_harness import parse_file

    path = tmp_path / "bill.txt"
    path.write_bytes(WORKED_FILE.encode())
    rows = parse_file(path).to_pylist()
    utc = timezone.utc
    direct = '{"appId":"950a97bce77b885b747536a1e3887465","type_label":"direct"}'
    free = '{"appId":"950a97bce77b885b747536a1e3887465","type_label":"free"}'
    want = [
        ("2227d1577ef0a62ee9c425cee9b308d4aec4d991", datetime(2015, 10, 12, 8, 15, 12, tzinfo=utc), 35, "0", direct),
        ("9d4e063fb366971ec780fd39991924e86e20e6cb", datetime(2015, 10, 12, 8, 15, 12, tzinfo=utc), 35, "0", direct),
        ("a94ba5cca03eaa4d785753428b64efb255e92cf9", datetime(2015, 10, 12, 1, 5, 7, tzinfo=utc), 0, "1", free),
    ]
    assert [(r["record_id"], r["start_time"], r["duration_s"], r["call_type"], r["extra"]) for r in rows] == want
    assert [r["call_id"] for r in rows] == [w[0] for w in want]
    assert [r["end_time"] for r in rows] == [w[1] + timedelta(seconds=w[2]) for w in want]
    assert {(r["provider"], r["account"], r["direction"]) for r in rows} == {("youlianyun", SID, "unknown")}
    assert [r["caller"] for r in rows] == ["60000000000001", "60000000000001", "60000000000002"]
    assert rows[2]["callee"] == "60000000000003"
    first = f"{SID}|{APP_ID}|60000000000001|13800138000|2015-10-12 16:15:12|35|0|0"
    assert hashlib.sha1(first.encode()).hexdigest() == want[0][0]


# ---- envelopes, success codes, body and date styles ------------------------------------------


@pytest.mark.parametrize("success_code", ["200", "000000"])
@pytest.mark.parametrize("envelope", ["flat", "resp"])
@pytest.mark.parametrize("bill_shape", ["flat", "object", "list"])
def test_envelope_and_success_code_variants(
    server: SandboxServer, emulator: YoulianyunEmulator, success_code: str, envelope: str, bill_shape: str
) -> None:
    emulator.configure(success_code=success_code, envelope=envelope, bill_shape=bill_shape)
    pulled = pull(server, OCT12)
    assert pulled.projection() == expected(emulator, OCT12)
    assert len(pulled.projection()) >= 5


def test_wrapped_only_server_gives_100003_and_the_body_style_hint(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    emulator.accept_body = "wrapped"
    with pytest.raises(ConfigError, match="100003") as caught:
        pull(server, OCT12)
    assert "body_style" in (caught.value.hint or "")
    assert pull(server, OCT12, body_style="wrapped").projection() == expected(emulator, OCT12)


def test_compact_only_server_gives_100004_and_the_date_style_hint(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    emulator.date_formats = "compact"
    with pytest.raises(ConfigError, match="100004") as caught:
        pull(server, OCT12)
    assert "date_style" in (caught.value.hint or "")
    assert pull(server, OCT12, date_style="compact").projection() == expected(emulator, OCT12)
    assert json.loads(requests_to(emulator, BILL)[-1].body)["date"] == "20151012"


# ---- §4.2 error codes ------------------------------------------------------------------------

CLASS_EXIT = {AuthError: ExitCode.AUTH, ConfigError: ExitCode.CONFIG, UnavailableError: ExitCode.UNAVAILABLE}


@pytest.mark.parametrize("code", sorted(codes.TABLE))
def test_every_error_code_maps_to_its_class_and_hint(
    server: SandboxServer, emulator: YoulianyunEmulator, code: str
) -> None:
    kind = codes.TABLE[code][0]
    emulator.resp_error = [code, 100]
    with pytest.raises(CdrfetchError) as caught:
        pull(server, OCT12)
    assert type(caught.value) is kind
    assert caught.value.exit_code == CLASS_EXIT[kind]
    assert code in caught.value.message and caught.value.hint
    attempts = len(requests_to(emulator, BILL))
    assert attempts == (4 if code in codes.RETRYABLE else 1)  # retries=3 in the sandbox profile


@pytest.mark.parametrize(
    ("code", "kind", "hint"),
    [
        ("101106", AuthError, "system clock"),
        ("101116", AuthError, "auth_token"),
        ("100005", AuthError, "IP"),
        ("101107", AuthError, "base_url"),
        ("102105", ConfigError, "do not match"),
        ("999999", UnavailableError, "error codes"),
    ],
)
def test_decided_hints(server: SandboxServer, emulator: YoulianyunEmulator, code: str, kind: type, hint: str) -> None:
    emulator.resp_error = [code, 1]
    with pytest.raises(kind) as caught:
        pull(server, OCT12)
    assert hint in (caught.value.hint or "")


@pytest.mark.parametrize("code", sorted(codes.RETRYABLE))
def test_retryable_codes_recover_and_every_retry_is_re_signed(
    server: SandboxServer, emulator: YoulianyunEmulator, code: str
) -> None:
    emulator.resp_error = [code, 2]
    pulled = pull(server, OCT12, clock=ticking())
    assert pulled.projection() == expected(emulator, OCT12)
    sent = requests_to(emulator, BILL)
    assert len(sent) == 3
    assert len({r.param("sig") for r in sent}) == 3
    assert len({r.header("authorization") for r in sent}) == 3


def test_no_data_code_is_zero_records_and_a_complete_chunk(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.no_data_dates = {"2015-10-12"}
    assert pull(server, OCT12).table.num_rows == 0
    assert not requests_to(emulator, FILE)


@pytest.mark.parametrize(
    ("setup", "kind", "code"),
    [
        (lambda e: e.accounts.update({SID: "f" * 32}), AuthError, "101116"),
        (lambda e: setattr(e, "account_state", "101108"), AuthError, "101108"),
        (lambda e: setattr(e, "ip_allow", ["10.0.0.1"]), AuthError, "100005"),
        (lambda e: e.apps.clear(), ConfigError, "102102"),
        (lambda e: e.apps.update({APP_ID: "b" * 32}), ConfigError, "102105"),
        (lambda e: setattr(e, "app_state", "102117"), ConfigError, "102117"),
    ],
)
def test_emulator_driven_errors_reach_the_right_class(
    server: SandboxServer, emulator: YoulianyunEmulator, setup: Any, kind: type, code: str
) -> None:
    setup(emulator)
    with pytest.raises(kind, match=code):
        pull(server, OCT12)
    assert len(requests_to(emulator, BILL)) == 1  # auth and config failures are never retried


def test_wrong_version_segment(server: SandboxServer) -> None:
    with pytest.raises(AuthError, match="101107"):
        pull(server, OCT12, base_url=f"{server.url}/2013-12-26")


def test_5xx_and_non_json_answers_are_retried_then_unavailable(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    emulator.faults.fail_next(1, 502, BILL)
    emulator.faults.fail_next(1, 200, BILL)  # HTTP 200 with a text body: a proxy page
    assert pull(server, OCT12).projection() == expected(emulator, OCT12)
    emulator.faults.fail_next(100, 200, BILL)
    with pytest.raises(UnavailableError, match="respCode") as caught:
        pull(server, OCT12)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE


def test_http_404_on_billlist_is_config(server: SandboxServer) -> None:
    with pytest.raises(ConfigError) as caught:
        pull(server, OCT12, base_url=f"{server.url}/2014-06-30/nowhere")
    assert "base_url" in (caught.value.hint or "")


def test_throttling_is_retried(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.faults.throttle_next(2, 0, BILL)
    assert pull(server, OCT12).projection() == expected(emulator, OCT12)


# ---- chunking, `day`, window filter ----------------------------------------------------------


def test_day_sends_the_literal_and_keeps_the_whole_file(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    window = from_options(day="day", start=None, end=None, tz=SHANGHAI, now=VECTOR_NOW)
    pulled = pull(server, window)
    assert json.loads(requests_to(emulator, BILL)[0].body)["date"] == "day"
    assert pulled.projection() == expected(emulator, window) == expected(emulator, OCT12)


def test_window_is_split_into_shanghai_days_and_today_is_skipped(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    window = Window(datetime(2015, 10, 10, 16, tzinfo=timezone.utc), datetime(2015, 10, 14, tzinfo=timezone.utc))
    pulled = pull(server, window)
    asked = [json.loads(r.body)["date"] for r in requests_to(emulator, BILL)]
    assert asked == ["2015-10-11", "2015-10-12"]
    assert any("2015-10-13: skipped" in w for w in pulled.summary.warnings)
    assert pulled.projection() == expected(emulator, window)


def test_explicit_window_drops_outside_rows_after_numbering(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    whole = pull(server, OCT12).table
    middle = sorted(whole.column("start_time").to_pylist())[len(whole) // 2]
    window = Window(middle, OCT12.end)
    part = pull(server, window).table
    assert 0 < part.num_rows < whole.num_rows
    assert all(window.contains(s) for s in part.column("start_time").to_pylist())
    kept = set(part.column("record_id").to_pylist())
    assert kept == {r["record_id"] for r in whole.to_pylist() if window.contains(r["start_time"])}


def test_duplicate_edge_row_gets_two_ids(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    table = pull(server, OCT12).table
    ids = table.column("record_id").to_pylist()
    assert len(set(ids)) == len(ids)
    keys = [(r["caller"], r["callee"], r["start_time"], r["duration_s"], r["call_type"]) for r in table.to_pylist()]
    assert len(set(keys)) < len(keys)


# ---- download --------------------------------------------------------------------------------


def test_download_target_is_downurl_plus_token_byte_for_byte(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    pull(server, OCT12)
    got = requests_to(emulator, FILE)[0].target
    name, issued = next(iter(emulator.issued.items()))
    assert got == f"/fileserver/file?fileName={quote(name, safe='')}&token={issued.token}"
    for escape in ("%2B", "%2F", "%0A", "%3D"):
        assert escape in got
    assert requests_to(emulator, FILE)[0].header("authorization") is None
    assert "sig=" not in got


@pytest.mark.parametrize("status", [403, 404, 410])
def test_stale_link_asks_billlist_once_more(server: SandboxServer, emulator: YoulianyunEmulator, status: int) -> None:
    emulator.faults.fail_next(1, status, FILE)
    assert pull(server, OCT12).projection() == expected(emulator, OCT12)
    assert [r.method for r in emulator.received] == ["POST", "GET", "POST", "GET"]


def test_link_that_stays_stale_is_unavailable(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.url_ttl_seconds = 0
    with pytest.raises(UnavailableError) as caught:
        pull(server, OCT12)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert len(requests_to(emulator, BILL)) == 2 and len(requests_to(emulator, FILE)) == 2


def test_truncated_download_is_retried(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.truncate_download = 1
    assert pull(server, OCT12).projection() == expected(emulator, OCT12)
    assert len(requests_to(emulator, FILE)) == 2


def test_bad_token_warn_mode_keeps_the_rows_and_warns(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.bad_token = True
    pulled = pull(server, OCT12)
    assert pulled.projection() == expected(emulator, OCT12)
    assert any("does not match the download token" in w for w in pulled.summary.warnings)
    token = next(iter(emulator.issued.values())).token
    assert not any(token in w for w in pulled.summary.warnings)


def test_bad_token_strict_mode_downloads_again_within_the_budget_then_fails(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    emulator.bad_token = True
    with pytest.raises(DataError) as caught:
        pull(server, OCT12, verify_token="strict")
    assert caught.value.exit_code == ExitCode.DATA
    assert len(requests_to(emulator, FILE)) == 1 + DAMAGED_DOWNLOADS


def test_token_check_off_and_good_tokens_do_not_warn(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    assert pull(server, OCT12, verify_token="strict").summary.warnings == []
    emulator.bad_token = True
    assert pull(server, OCT12, verify_token="off").summary.warnings == []


@pytest.mark.parametrize("container", ["zip", "gzip"])
def test_token_of_the_decompressed_member_also_matches(
    server: SandboxServer, emulator: YoulianyunEmulator, container: str
) -> None:
    emulator.configure(container=container)
    assert pull(server, OCT12, verify_token="strict").summary.warnings == []


@pytest.mark.parametrize("container", ["zip", "gzip"])
def test_corrupt_archive_is_downloaded_again_within_the_budget_then_data_error(
    server: SandboxServer, emulator: YoulianyunEmulator, container: str
) -> None:
    emulator.configure(container=container, corrupt_archive=True)
    with pytest.raises(DataError):
        pull(server, OCT12)
    assert len(requests_to(emulator, FILE)) == 1 + DAMAGED_DOWNLOADS


def test_empty_file_with_the_empty_md5_is_zero_records(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.empty_file = True
    assert pull(server, OCT12, verify_token="strict").table.num_rows == 0


def test_error_body_disguised_as_a_file(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    original = emulator._file

    def error_body(request: Any, match: Any) -> Any:
        from cdrfetch.sandbox.server import Reply

        return Reply.json({"resp": {"respCode": "101116"}}) if request.param("token") else original(request, match)

    emulator._file = error_body  # type: ignore[method-assign]
    with pytest.raises(AuthError, match="101116"):
        pull(server, OCT12)


# ---- §5 file-format variants, end to end -----------------------------------------------------

LAYOUTS = [
    {"container": "zip"},
    {"container": "gzip"},
    {"delimiter": "\t"},
    {"delimiter": "|"},
    {"delimiter": ";"},
    {"header": False},
    {"encoding": "utf-8-sig"},
    {"encoding": "gbk"},
    {"line_ending": "\n"},
    {"line_ending": "\r"},
    {"container": "zip", "delimiter": "\t", "header": False, "encoding": "gbk", "line_ending": "\r"},
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: "-".join(f"{k}={v!r}" for k, v in layout.items()))
def test_file_layouts_give_the_same_records_and_ids(
    server: SandboxServer, emulator: YoulianyunEmulator, layout: dict[str, Any]
) -> None:
    reference = pull(server, OCT12).table
    emulator.configure(**layout)
    pulled = pull(server, OCT12, verify_token="strict")
    assert pulled.projection() == expected(emulator, OCT12)
    assert pulled.table.column("record_id").to_pylist() == reference.column("record_id").to_pylist()
    assert pulled.table.column("extra").to_pylist() == reference.column("extra").to_pylist()


def test_gbk_labels_stay_verbatim_without_a_type_label(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.configure(encoding="gbk", type_style="label")
    assert files.render(emulator.rows(date(2015, 10, 12)), emulator.fmt).decode("gbk")  # really GBK bytes
    table = pull(server, OCT12).table
    assert set(table.column("call_type").to_pylist()) <= {"直拨", "免费", "回拨"}
    assert all("type_label" not in extra for extra in table.column("extra").to_pylist())


def test_flypaas_header_maps_aliases_and_keeps_bill_in_extra(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    emulator.configure(header_names="flypaas", zero_pad=False)
    pulled = pull(server, OCT12)
    assert pulled.projection() == expected(emulator, OCT12)
    extras = [json.loads(e) for e in pulled.table.column("extra").to_pylist()]
    assert all(set(e) == {"appId", "bill"} for e in extras)
    assert pulled.table.column("call_type").null_count == pulled.table.num_rows


def test_malformed_row_names_file_and_line(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.malformed_row = 3
    with pytest.raises(DataError, match=r"bill 2015-10-12: line 5: startTime '2015-13-45 25:61:61'") as caught:
        pull(server, OCT12)
    assert caught.value.exit_code == ExitCode.DATA


# ---- §5.2 parsing rules, file by file --------------------------------------------------------

HEAD = "ClientId,Callee,startTime,duration,type\n"


def parsed(tmp_path: Path, text: str | bytes, keep: Window | None = None, tz: str = "Asia/Shanghai") -> list[Any]:
    path = tmp_path / "bill.txt"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return parse_file(path, keep, tz).to_pylist()


@pytest.mark.parametrize(
    ("stamp", "utc"),
    [
        ("2015-10-12 16:15:12", datetime(2015, 10, 12, 8, 15, 12)),
        ("2015/10/12 16:15:12", datetime(2015, 10, 12, 8, 15, 12)),
        ("2015-10-12T16:15:12", datetime(2015, 10, 12, 8, 15, 12)),
        ("2014-4-18 3:50:8", datetime(2014, 4, 17, 19, 50, 8)),
        ("2015-10-12 16:15:12.123987", datetime(2015, 10, 12, 8, 15, 12, 123000)),
    ],
)
def test_start_time_forms(tmp_path: Path, stamp: str, utc: datetime) -> None:
    row = parsed(tmp_path, HEAD + f"1,2,{stamp},5,0\n")[0]
    assert row["start_time"] == utc.replace(tzinfo=timezone.utc)
    assert row["record_id"] == hashlib.sha1(f"{SID}|{APP_ID}|1|2|{stamp}|5|0|0".encode()).hexdigest()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,2,,5,0", "line 3: startTime ''"),
        ("1,2,yesterday,5,0", "line 3: startTime 'yesterday'"),
        ("1,2,2015-02-30 10:00:00,5,0", "line 3: startTime"),
        ("1,2,2015-10-12 10:00:00,-5,0", "line 3: duration '-5'"),
        ("1,2,2015-10-12 10:00:00,12s,0", "line 3: duration '12s'"),
        ("1,2,2015-10-12 10:00:00,1,0,x,y", "line 3: 7 cells"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(DataError, match=f"bill.txt: {message}"):
        parsed(tmp_path, HEAD + "1,2,2015-10-12 09:00:00,5,0\n" + line + "\n")


def test_optional_cells_are_null_and_ragged_rows_are_padded(tmp_path: Path) -> None:
    rows = parsed(tmp_path, HEAD + " 1 ,,2015-10-12 10:00:00, 35.0 ,\n2,3,2015-10-12 10:00:01\n")
    assert [(r["caller"], r["callee"], r["duration_s"], r["call_type"], r["end_time"]) for r in rows] == [
        ("1", None, 35, None, datetime(2015, 10, 12, 2, 0, 35, tzinfo=timezone.utc)),
        ("2", "3", None, None, None),
    ]
    assert json.loads(rows[0]["extra"]) == {"appId": APP_ID}
    key = f"{SID}|{APP_ID}|1||2015-10-12 10:00:00|35.0||0"  # raw trimmed cells, before any parsing
    assert rows[0]["record_id"] == hashlib.sha1(key.encode()).hexdigest()


def test_blank_lines_quotes_bom_and_missing_final_newline(tmp_path: Path) -> None:
    text = (
        "\ufeff\r\n  \r\n"
        + HEAD.replace("\n", "\r\n")
        + '\r\n"1","a, b",2015-10-12 10:00:00,5,2\r\n   \r\n1,2,2015-10-12 10:00:01,6,0'
    )
    rows = parsed(tmp_path, text)
    assert [(r["callee"], r["duration_s"]) for r in rows] == [("a, b", 5), ("2", 6)]
    assert json.loads(rows[0]["extra"])["type_label"] == "callback"


def test_positional_columns_beyond_five_go_to_extra(tmp_path: Path) -> None:
    rows = parsed(tmp_path, "1,2,2015-10-12 10:00:00,5,0,x,y\n3,4,2015-10-12 11:00:00,6,1,z,w\n")
    assert json.loads(rows[0]["extra"]) == {"appId": APP_ID, "type_label": "direct", "col_6": "x", "col_7": "y"}


def test_undecodable_bytes_name_the_offset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="byte offset"):
        parsed(tmp_path, HEAD.encode() + b"1,2,2015-10-12 10:00:00,5,\xff\xff\xff\n")


def test_no_delimiter_fits(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="delimiter"):
        parsed(tmp_path, "just some words\nand more words\n")


def test_fixed_offset_zone_and_utc(tmp_path: Path) -> None:
    line = HEAD + "1,2,2015-10-12 10:00:00,5,0\n"
    assert parsed(tmp_path, line, tz="+09:00")[0]["start_time"] == datetime(2015, 10, 12, 1, tzinfo=timezone.utc)
    assert parsed(tmp_path, line, tz="UTC")[0]["start_time"] == datetime(2015, 10, 12, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "stamps", [["2021-03-14 02:30:00"], ["2021-11-07 01:30:00"], ["2021-03-14 02:30:00", "2021-11-07 01:30:00"]]
)
def test_dst_gap_and_repeat_resolve_with_fold_0(tmp_path: Path, stamps: list[str]) -> None:
    rows = parsed(tmp_path, HEAD + "".join(f"1,2,{stamp},5,0\n" for stamp in stamps), tz="America/New_York")
    ny = ZoneInfo("America/New_York")
    want = [datetime.fromisoformat(stamp).replace(tzinfo=ny, fold=0).astimezone(timezone.utc) for stamp in stamps]
    assert [r["start_time"] for r in rows] == want


def test_occurrence_index_spans_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdrfetch.providers.youlianyun import read

    monkeypatch.setattr(read, "BATCH_ROWS", 3)  # the exact reader yields blocks of 3 rows
    row = "1,2,2015-10-12 10:00:00,5,0\n"
    other = "1,2,2015-10-12 10:00:01,5,0\n"
    rows = parsed(tmp_path, "\n" + HEAD + "1,2,2015-10-12 9:00:00,5,0\n" + (row + other) * 4)  # blank first line
    ids = [r["record_id"] for r in rows[1:]]
    for n in range(4):
        assert ids[2 * n] == hashlib.sha1(f"{SID}|{APP_ID}|1|2|2015-10-12 10:00:00|5|0|{n}".encode()).hexdigest()
    assert len(set(ids)) == len(ids)


# ---- hypothesis: any layout of any rows parses to what an independent model says -------------

CELL = st.text(alphabet="0123456789", max_size=14)
STAMP = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
ROW = st.tuples(
    CELL, CELL, STAMP, st.one_of(st.none(), st.integers(0, 10**6)), st.sampled_from(["0", "1", "2", "", "9"])
)


@st.composite
def bill_files(draw: st.DrawFn) -> tuple[Any, ...]:
    pool = draw(st.lists(ROW, min_size=1, max_size=6))
    rows = draw(st.lists(st.sampled_from(pool), min_size=10, max_size=80))  # repeats exercise `n`
    return (
        rows,
        draw(st.sampled_from([",", "\t", "|", ";"])),
        draw(st.sampled_from(["\r\n", "\n", "\r"])),
        draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk"])),
        draw(st.booleans()),  # header
        draw(st.booleans()),  # zero padding
        draw(st.booleans()),  # a blank first line (the exact reader from the start)
    )


@st.composite
def bill_cases(draw: st.DrawFn) -> tuple[Any, ...]:
    rows, *layout = draw(bill_files())
    in_order = draw(st.booleans())  # bill files are sorted by start; the parser takes a shortcut then
    return (sorted(rows, key=lambda row: row[2]) if in_order else rows, *layout)


def _stamp_text(value: datetime, padded: bool) -> str:
    if padded:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return f"{value.year}/{value.month}/{value.day} {value.hour}:{value.minute}:{value.second}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bill_cases())
def test_parser_matches_an_independent_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Any) -> None:
    from cdrfetch.providers.youlianyun import parse, read

    monkeypatch.setattr(read, "_ARROW_BLOCK", 160)  # many small blocks in both readers:
    monkeypatch.setattr(read, "BATCH_ROWS", 4)  # the occurrence index must cross them
    monkeypatch.setattr(parse, "_SCAN_ROWS", 3)  # and an unordered day reads its history in slices
    rows, delimiter, newline, encoding, header, padded, lead = case
    cells = [(c, e, _stamp_text(s, padded), "" if d is None else str(d), t) for c, e, s, d, t in rows]
    lines = [delimiter.join(HEAD.strip().split(","))] if header else []
    lines += [delimiter.join(f" {cell} " if i % 2 else cell for i, cell in enumerate(row)) for row in cells]
    path = tmp_path / "bill.txt"
    path.write_bytes(((newline if lead else "") + newline.join(lines) + newline * 2).encode(encoding))
    got = parse_file(path).to_pylist()
    seen: collections.Counter[tuple[str, ...]] = collections.Counter()
    want = []
    for (client, callee, start, duration, kind), raw in zip(rows, cells, strict=True):
        n = seen[raw]
        seen[raw] += 1
        utc = start.replace(tzinfo=SHANGHAI).astimezone(timezone.utc)
        want.append((record_id(SID, APP_ID, *raw, n), client or None, callee or None, utc, duration, kind or None))
    assert [
        (r["record_id"], r["caller"], r["callee"], r["start_time"], r["duration_s"], r["call_type"]) for r in got
    ] == want


# ---- the emulator itself: §8.3 precedence and §8.2 routes ------------------------------------

GOOD_TS = "20151013160756"
GOOD_SIG = "87BC2AF87E4F19425D9C60B2B1D7270C"


def _auth(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("kwargs", "sig", "answer"),
    [
        ({"body": {"appId": APP_ID}, "authorization": ""}, None, "100003"),  # before any auth check
        ({"body": {"appBill": {"appId": APP_ID, "date": "day"}}}, GOOD_SIG, "200"),  # `both` shapes accepted
        ({"body": {"appId": "bad-id!", "date": "day"}, "authorization": ""}, None, "102101"),
        ({"body": {"appId": APP_ID, "date": "yesterday"}, "authorization": ""}, None, "100004"),
        ({"authorization": ""}, None, "101100"),
        ({"authorization": "not base64!"}, None, "101101"),
        ({"authorization": _auth(":" + GOOD_TS)}, None, "101102"),
        ({"authorization": _auth(SID + ":")}, None, "101103"),
        ({"authorization": _auth("short:" + GOOD_TS)}, None, "101104"),
        ({"authorization": _auth("b" * 32 + ":" + GOOD_TS)}, None, "101113"),
        ({}, None, "101114"),
        ({}, "", "101114"),
        (
            {"authorization": _auth("ab" + ":" + GOOD_TS), "path": "/2014-06-30/Accounts/ab/billList"},
            GOOD_SIG,
            "101104",
        ),
        ({"authorization": _auth("!" * 32 + ":x"), "path": f"/Accounts/{'!' * 32}/billList"}, "S", "101105"),
        ({"authorization": _auth(SID + ":2015101316075")}, GOOD_SIG, "101106"),  # unparseable: expired
        ({"authorization": _auth(SID + ":20151013170000")}, "x", "101116"),  # future ts accepted
        ({"path": f"/2013-12-26/Accounts/{SID}/billList"}, GOOD_SIG, "101107"),
        ({"path": f"/Accounts/{SID}/billList.json"}, GOOD_SIG, "200"),  # no version segment, .json suffix
        ({"body": {"appId": "unknown_app", "date": "day"}}, GOOD_SIG, "102102"),
        ({"body": {"appId": APP_ID, "date": "week"}}, GOOD_SIG, "100004"),  # undocumented for Youlianyun
        ({"body": {"appId": APP_ID, "date": "20151012"}}, GOOD_SIG, "100004"),  # dash only by default
        ({"body": {"appId": APP_ID, "date": "2015-10-13"}}, GOOD_SIG, "100007"),  # today
    ],
)
def test_emulator_check_precedence(server: SandboxServer, kwargs: dict[str, Any], sig: str | None, answer: str) -> None:
    assert raw_bill_list(server, GOOD_TS, sig, **kwargs)["respCode"] == answer


def test_emulator_account_checks_come_before_the_signature(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.account_state = "101110"
    assert raw_bill_list(server, GOOD_TS, "WRONG")["respCode"] == "101110"
    emulator.account_state = None
    emulator.app_state = "102119"
    assert raw_bill_list(server, GOOD_TS, "WRONG")["respCode"] == "102119"
    other = "c" * 32
    emulator.accounts[other] = TOKEN
    path = f"/2014-06-30/Accounts/{other}/billList"
    assert raw_bill_list(server, GOOD_TS, "x", path=path, authorization=_auth(f"{other}:{GOOD_TS}"))["respCode"] == (
        "102105"
    )


def test_emulator_routes_and_framework_errors(server: SandboxServer) -> None:
    url = f"{server.url}/2014-06-30/Accounts/{SID}/billList"
    assert requests.post(url + ".xml?sig=x", data="{}", timeout=5).status_code == 415
    assert requests.post(url + "?sig=x", data="{}", headers={"Accept": "application/xml"}, timeout=5).status_code == 415
    assert requests.post(url + "?sig=x", data="not json", timeout=5).status_code == 400
    assert requests.get(f"{server.url}/elsewhere", timeout=5).status_code == 404
    assert requests.get(f"{server.url}/fileserver/file?fileName=nope&token=x", timeout=5).status_code == 404


def test_emulator_download_wants_the_exact_name_and_token(server: SandboxServer) -> None:
    answer = raw_bill_list(server, GOOD_TS, GOOD_SIG)
    down_url, token = answer["downUrl"], answer["token"]
    assert requests.get(down_url + "&token=" + token, timeout=5).status_code == 200
    assert requests.get(down_url, timeout=5).status_code == 403
    assert requests.get(down_url + "&token=" + token.upper(), timeout=5).status_code == 403
    assert requests.get(down_url.replace("%2B", "%252B") + "&token=" + token, timeout=5).status_code == 404
    assert requests.get(down_url.replace("%0A", "") + "&token=" + token, timeout=5).status_code == 404


def test_emulator_is_deterministic(server: SandboxServer) -> None:
    first, second = raw_bill_list(server, GOOD_TS, GOOD_SIG), raw_bill_list(server, GOOD_TS, GOOD_SIG)
    assert first == second
    assert YoulianyunEmulator(seed=1).rows(date(2015, 10, 12)) != YoulianyunEmulator().rows(date(2015, 10, 12))


def test_several_bill_links_are_all_read() -> None:
    body = json.dumps({"resp": {"respCode": "000000", "accountBill": [{"downUrl": "a", "token": "t"}] * 2}})
    assert codes.links(body.encode(), "billList") == [("a", "t"), ("a", "t")]
    assert codes.links(b'{"respCode": 100007}', "billList") == []
    with pytest.raises(DataError, match="downUrl"):
        codes.links(b'{"respCode": "200", "token": "t"}', "billList")


def test_empty_body_with_a_non_empty_token_is_downloaded_once_more_then_unavailable(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    original = emulator._success

    def empty_body_real_token(*args: Any) -> Any:
        reply = original(*args)
        for issued in emulator.issued.values():
            issued.body = b""  # served empty, while the token still is the MD5 of the real file
        return reply

    emulator._success = empty_body_real_token  # type: ignore[method-assign]
    with pytest.raises(UnavailableError, match="empty download"):
        pull(server, OCT12)
    assert len(requests_to(emulator, FILE)) == 1 + DAMAGED_DOWNLOADS


def test_several_bill_files_are_one_day_with_n_counted_across_them(
    server: SandboxServer, emulator: YoulianyunEmulator
) -> None:
    whole = pull(server, OCT12).table
    emulator.configure(bill_shape="list", bill_parts=3)
    pulled = pull(server, OCT12)
    assert len(requests_to(emulator, FILE)) == 1 + 3
    assert pulled.projection() == expected(emulator, OCT12)
    assert sorted(pulled.table.column("record_id").to_pylist()) == sorted(whole.column("record_id").to_pylist())
    assert any("3 files" in w for w in pulled.summary.warnings)


def test_slow_answers_time_out_then_unavailable(server: SandboxServer, emulator: YoulianyunEmulator) -> None:
    emulator.faults.latency, emulator.faults.latency_route = 0.3, BILL
    with pytest.raises(CdrfetchError) as caught:
        pull(server, OCT12, timeout=0.05, retries=1)
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert "timeout" in (caught.value.hint or "")
