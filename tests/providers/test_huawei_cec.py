"""Huawei CEC (CC-FS): auth-v2 vectors, the export flow, the emulator's faults and the CSV parser."""

from __future__ import annotations

import collections
import csv
import http.client
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdrfetch import archive, records
from cdrfetch.errors import AuthError, ConfigError, DataError, ExitCode, TemporaryError
from cdrfetch.providers.huawei_cec import columns as cols
from cdrfetch.providers.huawei_cec.emulator import HuaweiCecEmulator, export
from cdrfetch.providers.huawei_cec.parse import Context, member_kind, parse_members
from cdrfetch.providers.huawei_cec.signing import AuthV2, authorization, canonical_request, enc, hmac_hex, host_header
from cdrfetch.sandbox.server import Emulator, ExpectedCall, SandboxServer
from cdrfetch.testing import harness
from cdrfetch.testing.contract import ProviderContract
from cdrfetch.testing.harness import FakeTime, read_rows, run_cli
from cdrfetch.windows import Window, zone
from tests.providers.huawei_cec_support import WINDOW, count, provider_for, pull

UTC = timezone.utc
QUERY, DOWNLOAD = "queryBillData", "downloadBillFile"

# ---- spec §3.5 known-answer vectors ---------------------------------------------------------------

AK, SK, TS, HOST = "globalaktest", "example-secret-not-real", "2018-07-02T02:43:08Z", "10.22.26.181:28080"
CT = "application/json; charset=UTF-8"
DL_PATH, GEN_PATH = "/CCFS/resource/ccfs/downloadBillFile", "/CCFS/resource/ccfs/queryBillData"
BODY_DL = '{"request":{"version":"2.0"},"msgBody":{"billFileName":"20180702_9239cb50a8384bb0ab503441bf089446.zip"}}'
BODY_GEN = (
    '{"request":{"version":"2.0"},"msgBody":{"beginTime":"2019-04-03 09:00:00","endTime":"2019-04-03 12:00:00",'
    '"dataType":"call_record","callBackURL":"https://cdrfetch.invalid/callback"}}'
)
ENC_DL = (
    "%7B%22request%22%3A%7B%22version%22%3A%222.0%22%7D%2C%22msgBody%22%3A%7B%22billFileName%22%3A"
    "%2220180702_9239cb50a8384bb0ab503441bf089446.zip%22%7D%7D"
)
ENC_GEN = (
    "%7B%22request%22%3A%7B%22version%22%3A%222.0%22%7D%2C%22msgBody%22%3A%7B%22beginTime%22%3A%222019-04-03"
    "%2009%3A00%3A00%22%2C%22endTime%22%3A%222019-04-03%2012%3A00%3A00%22%2C%22dataType%22%3A%22call_record%22"
    "%2C%22callBackURL%22%3A%22https%3A%2F%2Fcdrfetch.invalid%2Fcallback%22%7D%7D"
)
DOC_HEADERS = "content-length;content-type;host\n"
DOC_CANON = "content-type:application%2Fjson%3B%20charset%3DUTF-8\nhost:10.22.26.181%3A28080\n"
VECTORS = {
    "A": (
        DL_PATH, {"host": HOST}, BODY_DL,
        f"POST\n{DL_PATH}\nhost\nhost:10.22.26.181%3A28080\n{ENC_DL}",
        "7811e20ef06f424771af71ef47659d1b7c28ec0a374883b2a95f5843f3d3b17f",
        f"auth-v2/{AK}/{TS}/host/fc284f425fbf7af1c347430eef200b6d3c9baeeafca56a0f2813d9dd5650743e",
    ),
    "B": (
        DL_PATH, {"content-length": "104", "content-type": CT, "host": HOST}, BODY_DL,
        f"POST\n{DL_PATH}\n{DOC_HEADERS}content-length:104\n{DOC_CANON}{ENC_DL}",
        "a207dc94cfb418896346da4a65f3035ec9c76f1a2af8388d03fd52730b502ae3",
        f"auth-v2/{AK}/{TS}/content-length;content-type;host/"
        "85d637cf4168b227052b5017dd714f3573a2ed4b549d74d43224ebbd44ce40ea",
    ),
    "C": (
        GEN_PATH, {"content-length": "182", "content-type": CT, "host": HOST}, BODY_GEN,
        f"POST\n{GEN_PATH}\n{DOC_HEADERS}content-length:182\n{DOC_CANON}{ENC_GEN}",
        "a207dc94cfb418896346da4a65f3035ec9c76f1a2af8388d03fd52730b502ae3",
        f"auth-v2/{AK}/{TS}/content-length;content-type;host/"
        "bdd842050a3c5b78a941c957302b4ad0d3a598e80b9b19b3d1f4b326e9c399bf",
    ),
}  # fmt: skip
FROZEN = datetime(2018, 7, 2, 2, 43, 8, tzinfo=UTC)


@pytest.mark.parametrize("vector", sorted(VECTORS))
def test_known_answer_vectors(vector: str) -> None:
    path, headers, body, canonical, signing_key, expected = VECTORS[vector]
    assert len(BODY_DL.encode()) == 104 and len(BODY_GEN.encode()) == 182
    assert canonical_request("POST", path, headers, body) == canonical
    assert hmac_hex(SK, expected.rsplit("/", 1)[0]) == signing_key
    assert authorization(AK, SK, TS, "POST", path, headers, body) == expected


@pytest.mark.parametrize("vector", sorted(VECTORS))
def test_authbase_signs_what_requests_sends(vector: str) -> None:
    path, _headers, body, _, _, expected = VECTORS[vector]
    signed = "host" if vector == "A" else "content-length;content-type;host"
    auth = AuthV2(AK, SK, clock=lambda: FROZEN, signed_headers=signed)
    request = requests.Request(
        "POST", f"http://{HOST}{path}", data=body.encode(), headers={"Content-Type": CT}, auth=auth
    ).prepare()
    assert request.headers["Authorization"] == expected
    assert request.headers["Host"] == HOST
    assert request.body == body.encode()
    assert SK not in repr(auth)


def test_signature_changes_with_body_time_and_host() -> None:
    _, headers, body, _, _, expected = VECTORS["B"]
    assert authorization(AK, SK, TS, "POST", DL_PATH, headers, body + "\n") != expected
    assert authorization(AK, SK, "2018-07-02T02:43:09Z", "POST", DL_PATH, headers, body) != expected
    assert authorization(AK, SK, TS, "POST", DL_PATH, headers | {"host": "10.22.26.181"}, body) != expected


def test_percent_encoding_and_host_rules() -> None:
    assert enc('a b/c:d;e=f{}",~._-') == "a%20b%2Fc%3Ad%3Be%3Df%7B%7D%22%2C~._-"
    assert enc("中") == "%E4%B8%AD"
    assert host_header("https://10.0.0.1:28443/x") == "10.0.0.1:28443"
    assert host_header("https://cc.example:443") == "cc.example"
    assert host_header("https://[fe80::1]:8443") == "[fe80::1]:8443"


def _replay(server: SandboxServer, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Send one raw request with exactly these headers (Host included) to the emulator."""
    connection = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=5)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("vector", sorted(VECTORS))
def test_emulator_accepts_the_vectors_and_rejects_one_changed_byte(vector: str) -> None:
    path, _headers, body, _, _, authz = VECTORS[vector]
    emulator = HuaweiCecEmulator(credentials={AK: SK}, clock=lambda: FROZEN)
    sent = {"Host": HOST, "Content-Type": CT, "Content-Length": str(len(body)), "Authorization": authz}
    with SandboxServer(emulator) as server:
        status, reply = _replay(server, path, body.encode(), sent)
        assert status == 200, reply
        assert reply["resultCode"] == ("0" if vector == "C" else "0300011")
        tampered = body.replace("2.0", "2.1").encode()
        status, reply = _replay(server, path, tampered, sent)
        assert status == 401 and reply["error"] == "Unauthorized" and reply["path"] == path


# ---- the contract suite ---------------------------------------------------------------------------


class TestHuaweiCecContract(ProviderContract):
    provider = "huawei-cec"
    main_route = QUERY
    download_route = DOWNLOAD

    def emulator_knobs(self) -> dict[str, Any]:
        return {"ready_after": 0.0}

    @pytest.mark.parametrize("fmt", ("parquet", "csv", "jsonl", "json"))
    def test_recordings_side_table_in_every_format(
        self, emulator: Emulator, profile: Path, tmp_path: Path, fmt: str
    ) -> None:
        out = tmp_path / f"calls.{fmt}"
        result = self.pull(profile, "-o", str(out))
        assert result.exit_code == 0, result.stderr
        side = tmp_path / f"calls.recordings.{fmt}"
        rows = read_rows(side, fmt)
        answered = [
            leg for leg in _legs(emulator, self.window) if leg.begin is not None and leg == export.legs(leg.call)[0]
        ]
        assert len(rows) == len(answered) > 0
        assert {r["record_id"] for r in rows} == {f"{export.call_id(leg.call)}:{_file_name(leg)}" for leg in answered}
        if fmt == "parquet":
            assert read_rows(side, fmt)[0]["start_time"].tzinfo is not None

    def test_poll_timeout_exits_75_naming_the_response_id(self, emulator: Emulator, profile: Path) -> None:
        assert isinstance(emulator, HuaweiCecEmulator)
        emulator.never_ready = True
        result = self.pull(profile, "-o", "-", "--set", "poll_timeout=0.5")
        assert result.exit_code == ExitCode.TEMPORARY, result.stderr
        job = next(iter(emulator.jobs.values()))
        response_id = "-".join(
            (job.file_name[9:17], job.file_name[17:21], job.file_name[21:25], job.file_name[25:29], job.file_name[29:])
        )
        assert response_id in result.stderr and job.file_name in result.stderr


def _legs(emulator: Emulator, window: Window) -> list[export.Leg]:
    assert isinstance(emulator, HuaweiCecEmulator)
    return export.rows_between(
        emulator.seed, emulator.ak, window.start, window.end, zone(emulator.data_tz), **emulator.sizes
    )


def _file_name(leg: export.Leg) -> str:
    return export.record_row(leg.call, "ak", timezone.utc)[9]


def _expected(emulator: HuaweiCecEmulator, window: Window = WINDOW) -> collections.Counter[ExpectedCall]:
    return collections.Counter(emulator.expected_calls(window))


# ---- the flow -------------------------------------------------------------------------------------


@pytest.mark.parametrize("hour", [0, 3, 15, 16, 17, 23])
def test_the_export_file_is_found_at_once_whatever_the_hour(hour: int) -> None:
    # one fast-forwarded clock for client and emulator: the dates they put in the file name agree at
    # every hour, also when Shanghai is already on the next UTC day (16:00-24:00 UTC)
    time = FakeTime(datetime(2024, 3, 10, hour, 30, tzinfo=UTC))
    emulator = HuaweiCecEmulator(data_tz="Asia/Shanghai", clock=time.now)
    with SandboxServer(emulator) as server:
        pulled = harness.pull(server, WINDOW, time=time, tz="Asia/Shanghai", poll_timeout=600.0)
    assert pulled.projection() == _expected(emulator)
    names = {json.loads(r.body)["msgBody"]["billFileName"] for r in emulator.received if DOWNLOAD in r.path}
    assert len(names) == 1  # never the alternative names of the second half of the poll timeout
    assert sum(time.slept) < 60  # fast-forwarded, not waited for


def test_polls_until_ready_with_progress_and_dashless_file_name() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, ready_after_polls=3)
    pulled = pull(emulator)
    assert pulled.projection() == _expected(emulator)
    assert count(emulator, DOWNLOAD) == 4
    assert sum("generating" in status for status in pulled.statuses) == 4
    names = {json.loads(r.body)["msgBody"]["billFileName"] for r in emulator.received if DOWNLOAD in r.path}
    assert names == set(emulator.jobs) and all("-" not in name for name in names)


def test_generate_sends_the_chunk_in_tz_and_the_settings() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, data_tz="Asia/Shanghai")
    window = Window(datetime(2024, 3, 1, 16, tzinfo=UTC), datetime(2024, 3, 8, 16, tzinfo=UTC))
    pulled = pull(emulator, window, account_id="tenant-1", data_type="call")
    bodies = [json.loads(r.body) for r in emulator.received if QUERY in r.path]
    assert [b["msgBody"]["beginTime"] for b in bodies] == [
        "2024-03-02 00:00:00",
        "2024-03-05 00:00:00",
        "2024-03-08 00:00:00",
    ]
    assert bodies[0]["msgBody"] == {
        "beginTime": "2024-03-02 00:00:00", "endTime": "2024-03-05 00:00:00", "dataType": "call",
        "callBackURL": "https://cdrfetch.invalid/callback", "accountId": "tenant-1",
    }  # fmt: skip
    assert bodies[0]["request"] == {"version": "2.0"}
    assert pulled.projection() == _expected(emulator, window)  # CSV times read in Asia/Shanghai
    assert pulled.tables["recordings"].num_rows == 0


def test_poll_timeout_is_temporary_and_names_the_response_id() -> None:
    emulator = HuaweiCecEmulator(never_ready=True)
    with pytest.raises(TemporaryError) as caught:
        pull(emulator, poll_timeout=0.3)
    response_id = next(iter(pull_ids(caught.value.hint or "")))
    assert caught.value.exit_code == ExitCode.TEMPORARY
    assert response_id.replace("-", "") in next(iter(emulator.jobs))


def pull_ids(hint: str) -> list[str]:
    return [word for word in hint.split() if word.count("-") == 4]


def test_alternative_file_names_from_half_the_timeout() -> None:
    clock = lambda: datetime(2024, 3, 5, 20, 0, tzinfo=UTC)  # noqa: E731 (Shanghai is already on the 6th)
    # ready at the first poll that names the file, so the outcome does not depend on how many
    # polls fit into the real-time half of poll_timeout
    emulator = HuaweiCecEmulator(ready_after=0.0, ready_after_polls=0, clock=clock, file_date_tz="UTC")
    pulled = pull(emulator, clock=clock, tz="Asia/Shanghai", poll_timeout=2.0)
    names = [json.loads(r.body)["msgBody"]["billFileName"][:8] for r in emulator.received if DOWNLOAD in r.path]
    assert names[0] == "20240306" and names[-1] == "20240305"
    assert pulled.tables["calls"].num_rows > 0


def test_shifted_file_date_is_found_by_the_minus_one_day_candidate() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, ready_after_polls=0, file_date_offset_days=-1)
    pulled = pull(emulator, poll_timeout=2.0)
    assert pulled.projection() == _expected(emulator)


@pytest.mark.parametrize("knob", ["throttle_query", "throttle_download"])
def test_flow_control_backs_off_and_retries(knob: str) -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, **{knob: 2})
    pulled = pull(emulator)
    assert pulled.projection() == _expected(emulator)
    assert count(emulator, QUERY) == (3 if knob == "throttle_query" else 1)


def test_persistent_query_flow_control_gives_up_after_five_tries() -> None:
    emulator = HuaweiCecEmulator(throttle_query=50)
    with pytest.raises(TemporaryError, match="0300009"):
        pull(emulator, retries=9)
    assert count(emulator, QUERY) == 5


def test_401_is_retried_once_and_stops_the_remaining_chunks() -> None:
    emulator = HuaweiCecEmulator(reject_auth=True)
    window = Window(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 8, tzinfo=UTC))
    pulled = pull(emulator, window, keep_going=True)
    assert [e.exit_code for e in pulled.errors] == [ExitCode.AUTH] * 3
    assert len(emulator.received) == 2  # one signed attempt + one re-signed retry; later chunks send nothing
    assert "sk" in (pulled.errors[0].hint or "") and "skipped" in pulled.errors[1].message


def test_403_means_ip_locked_and_is_not_retried() -> None:
    emulator = HuaweiCecEmulator(lock_now=True)
    with pytest.raises(AuthError, match="locked") as caught:
        pull(emulator)
    assert len(emulator.received) == 1 and caught.value.exit_code == ExitCode.AUTH


def test_emulator_locks_the_ip_after_repeated_failures() -> None:
    emulator = HuaweiCecEmulator(lock_after=3)
    for _ in range(2):
        with pytest.raises(AuthError) as caught:
            pull(emulator, sk="wrong")
    assert "locked" in caught.value.message  # run 1: 401, 401; run 2: 401 (third failure: locked), 403
    assert len(emulator.received) == 4


@pytest.mark.parametrize("damage", [{"corrupt_zip": True}, {"truncate_zip": "short"}, {"truncate_zip": "lying"}])
def test_damaged_download_is_fetched_again(damage: dict[str, Any]) -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, ready_after_polls=0, damage_limit=1, **damage)
    pulled = pull(emulator)
    assert pulled.projection() == _expected(emulator)
    assert count(emulator, DOWNLOAD) == 2


def test_archive_damaged_every_time_is_a_data_error() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, ready_after_polls=0, corrupt_zip=True)
    with pytest.raises(DataError, match="damaged"):
        pull(emulator)
    assert count(emulator, DOWNLOAD) == 3  # the download and two more attempts


def test_json_error_served_as_octet_stream_is_recognised() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, ready_after_polls=2, error_as_octet=True)
    assert pull(emulator).projection() == _expected(emulator)


def test_zero_records_is_success() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, empty=True)
    pulled = pull(emulator)
    assert pulled.tables["calls"].num_rows == 0 and pulled.tables["recordings"].num_rows == 0


@pytest.mark.parametrize(
    ("code", "param", "error", "text"),
    [
        ("0300002", "callBackURL", ConfigError, "callback_url"),
        ("0300004", "endTime", DataError, "3 days"),
        ("0300099", "", DataError, "undocumented"),
    ],
)
def test_result_codes(code: str, param: str, error: type[Exception], text: str) -> None:
    emulator = HuaweiCecEmulator(result_code=code, result_param=param)
    with pytest.raises(error) as caught:
        pull(emulator)
    assert code in str(caught.value) and text in str(caught.value)


def test_wrong_base_url_path_is_a_config_error() -> None:
    emulator = HuaweiCecEmulator()
    with SandboxServer(emulator) as server, pytest.raises(ConfigError, match="404"):
        pull(emulator, base_url=server.url + "/wrong")


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_window_days"):
        pull(HuaweiCecEmulator(), max_window_days=4)
    with pytest.raises(ConfigError, match="host"):
        pull(HuaweiCecEmulator(), signed_headers="content-type")


def test_signing_only_host_is_accepted() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0)
    assert pull(emulator, signed_headers="host").projection() == _expected(emulator)
    assert all("/host/" in (r.header("Authorization") or "") for r in emulator.received)


# ---- archive members and CSV variations -------------------------------------------------------------


def test_multi_part_members_are_all_read() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, part_rows=3)
    pulled = pull(emulator)
    assert pulled.projection() == _expected(emulator)
    assert pulled.tables["recordings"].num_rows > 3
    parts = ["x_call_10.csv", "x_call_2.csv", "x_record.csv", "x_call_1.csv", "readme.txt"]
    ordered = sorted((k, n) for n in parts if (k := member_kind(n)) is not None)
    assert [n for _, n in ordered] == ["x_call_1.csv", "x_call_2.csv", "x_call_10.csv", "x_record.csv"]


@pytest.mark.parametrize(
    "style",
    [{"header": False}, {"bom": True}, {"gbk": True}, {"short_rows": True}, {"header": False, "short_rows": True}],
)
def test_csv_variations_give_the_same_calls(style: dict[str, Any]) -> None:
    reference = pull(HuaweiCecEmulator(ready_after=0.0))
    emulator = HuaweiCecEmulator(ready_after=0.0, **style)
    pulled = pull(emulator)
    assert pulled.projection() == _expected(emulator)
    assert pulled.tables["recordings"].equals(reference.tables["recordings"]) != style.get("gbk", False)
    if style.get("short_rows"):
        assert any('"vdn_id"' not in row["extra"] for row in pulled.rows())
    if style.get("gbk"):
        assert any("GBK" in warning for warning in pulled.summary.warnings)


@pytest.mark.parametrize(("header", "keys"), [(True, ["ext_1", "ext_2"]), (False, ["col_22", "col_23"])])
def test_columns_past_21_go_to_extra(header: bool, keys: list[str]) -> None:
    pulled = pull(HuaweiCecEmulator(ready_after=0.0, header=header, extra_columns=2))
    extras = [json.loads(row["extra"]) for row in pulled.rows()]
    assert all(keys[0] in e and keys[1] in e for e in extras)


def test_multi_row_calls_keep_one_row_per_leg() -> None:
    pulled = pull(HuaweiCecEmulator(ready_after=0.0))
    rows = pulled.rows()
    by_call = collections.defaultdict(list)
    for row in rows:
        by_call[row["call_id"]].append(row["record_id"])
    multi = [ids for ids in by_call.values() if len(ids) == 3]
    assert multi, "the synthetic data must hold multi-row calls"
    assert all(sorted(i.rsplit(":", 1)[1] for i in ids) == ["-1", "1", "2"] for ids in multi)
    assert len({row["record_id"] for row in rows}) == len(rows)
    assert {row["direction"] for row in rows} == {"inbound", "outbound", "internal", "unknown"}


def test_recordings_map_per_spec() -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, data_tz="Asia/Shanghai")
    rows = pull(emulator, tz="Asia/Shanghai").rows("recordings")
    first = rows[0]
    assert first["record_id"] == f"{first['call_id']}:{first['file_name']}"
    assert first["file_name"].startswith("/10/1/record/") and first["original_file_name"].endswith(".V3")
    assert first["media_type"] == "5" and set(json.loads(first["extra"])) >= {"task_status", "task_result"}
    talk = {
        (c["call_id"], c["start_time"])
        for c in pull(HuaweiCecEmulator(ready_after=0.0, data_tz="Asia/Shanghai"), tz="Asia/Shanghai").rows()
    }
    assert all((r["call_id"], r["start_time"]) in talk for r in rows)


# ---- the parser on its own ------------------------------------------------------------------------


def _write(path: Path, rows: list[list[str]], header: bool = True) -> archive.Member:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        if header:
            writer.writerow(cols.CALL_NAMES)
        writer.writerows(rows)
    return archive.Member(path.name, path)


def _row(**cells: str) -> list[str]:
    base = dict.fromkeys(cols.CALL_NAMES, "") | {"developer": "ak", "call_id": "c1", "call_id_num": "-1"}
    return [(base | cells)[name] for name in cols.CALL_NAMES]


def _parse(member: archive.Member, tz: str = "UTC", account: str = "ak") -> tuple[list[dict[str, Any]], list[str]]:
    warnings: list[str] = []
    batches = list(parse_members([member], Context(account, zone(tz), warnings.append)))
    return [row for b in batches for row in b.data.to_pylist()], warnings


def test_times_duration_and_fallbacks(tmp_path: Path) -> None:
    rows, warnings = _parse(_write(tmp_path / "a_call.csv", [
        _row(call_id="a", call_begin="2024-03-04 08:00:00", call_end="2024-03-04 08:01:30.500"),
        _row(call_id="b", wait_begin="2024-03-04 09:00:00"),
        _row(call_id="c", ack_begin="2024-03-04T10:00:00"),
        _row(call_id="d", call_begin="2024-03-04 08:00:00", call_end="2024-03-04 07:00:00"),
    ]), tz="Asia/Shanghai")  # fmt: skip
    assert [r["start_time"] for r in rows] == [datetime(2024, 3, 4, h, tzinfo=UTC) for h in (0, 1, 2, 0)]
    assert [r["duration_s"] for r in rows] == [90, None, None, None]
    assert rows[0]["end_time"] == datetime(2024, 3, 4, 0, 1, 30, 500000, tzinfo=UTC)
    assert any("end before they begin" in w for w in warnings)


def test_dst_gap_falls_back_to_python_semantics(tmp_path: Path) -> None:
    rows, _ = _parse(_write(tmp_path / "a_call.csv", [_row(call_begin="2024-03-10 02:30:00")]), tz="America/New_York")
    local = datetime(2024, 3, 10, 2, 30, tzinfo=zone("America/New_York"))
    assert rows[0]["start_time"] == local.astimezone(UTC)


def test_missing_mandatory_values_name_member_and_line(tmp_path: Path) -> None:
    good = _row(call_begin="2024-03-04 08:00:00")
    with pytest.raises(DataError, match=r"x_call\.csv: line 4: no readable"):
        _parse(_write(tmp_path / "x_call.csv", [good, good, _row(call_begin="yesterday")]))
    with pytest.raises(DataError, match=r"y_call\.csv: line 2: call_id is empty"):
        _parse(_write(tmp_path / "y_call.csv", [_row(call_id="", call_begin="2024-03-04 08:00:00")]))


def test_developer_other_than_ak_is_kept_and_warned(tmp_path: Path) -> None:
    rows, warnings = _parse(_write(tmp_path / "a_call.csv", [
        _row(call_begin="2024-03-04 08:00:00"), _row(developer="other", call_begin="2024-03-04 08:00:00"),
    ]))  # fmt: skip
    assert [json.loads(r["extra"]).get("developer") for r in rows] == [None, "other"]
    assert any("developer" in w for w in warnings)


def test_direction_mapping() -> None:
    import pyarrow as pa

    codes = ["0", "7", "40", "45", "6", "46", "", "99", "1"]
    expected = ["inbound", "outbound", "outbound", "outbound", "internal"] + ["unknown"] * 4
    assert cols.direction(pa.array(codes)).to_pylist() == expected


CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL), min_size=1, max_size=20), header=st.booleans())
def test_columnar_normalization_matches_a_row_by_row_reference(
    tmp_path_factory: pytest.TempPathFactory, cells: list[tuple[str, str, str, str, str]], header: bool
) -> None:
    path = tmp_path_factory.mktemp("hyp") / "h_call.csv"
    rows = [
        _row(call_id=f"id{i}", agent_id=a, caller_no=b, vdn_id=c, call_type=d, release_cause=e,
             call_id_num=str(i), call_begin="2024-03-04 08:00:00")
        for i, (a, b, c, d, e) in enumerate(cells)
    ]  # fmt: skip
    if not header and rows[0][0].lower() == "developer":
        return
    parsed, _ = _parse(_write(path, rows, header=header))
    assert len(parsed) == len(rows)
    by_id = {r["record_id"]: r for r in parsed}
    for raw in rows:
        cell = dict(zip(cols.CALL_NAMES, raw, strict=True))
        got = by_id[f"{cell['call_id']}:{cell['call_id_num']}"]
        assert got["extra"] == records.extra_json({k: cell[k] for k in cols.CALL_EXTRA if cell[k]})
        assert got["caller"] == (cell["caller_no"] or None) and got["status"] == (cell["release_cause"] or None)
        assert got["call_type"] == (cell["call_type"] or None)


def test_sandbox_demo_shows_export_progress(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_cli("huawei-cec", "pull", "--sandbox", "--date", "day", "-o", str(out) + "/")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name.split(".", 1)[1] for p in out.rglob("*.parquet")) == ["parquet", "recordings.parquet"]


def test_check_proves_the_credentials() -> None:
    with provider_for(HuaweiCecEmulator()) as provider:
        assert "accepted" in provider.check()
    with provider_for(HuaweiCecEmulator(), sk="wrong") as provider, pytest.raises(AuthError):
        provider.check()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A fresh self-signed certificate for 127.0.0.1 (IP subject-alternative name), as files."""
    pytest.importorskip("cryptography")
    from cdrfetch.sandbox.tls import self_signed

    cert, key = self_signed()
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert)
    (folder / "key.pem").write_bytes(key)
    return str(folder / "cert.pem"), str(folder / "key.pem")


def test_https_with_ca_bundle_insecure_and_untrusted(certificate: tuple[str, str]) -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0, tls_cert=certificate)
    assert pull(emulator, ca_bundle=certificate[0]).projection() == _expected(emulator)
    assert pull(HuaweiCecEmulator(ready_after=0.0, tls_cert=certificate), insecure=True).tables["calls"].num_rows
    with pytest.raises(ConfigError, match="TLS verification"):
        pull(HuaweiCecEmulator(tls_cert=certificate))
    with pytest.raises(ConfigError, match="contradict"):
        pull(HuaweiCecEmulator(tls_cert=certificate), ca_bundle=certificate[0], insecure=True)


def test_header_only_empty_and_foreign_members_give_no_rows(tmp_path: Path) -> None:
    (tmp_path / "h_call.csv").write_text(",".join(cols.CALL_NAMES) + "\r\n", encoding="utf-8")
    (tmp_path / "e_record.csv").write_bytes(b"")
    (tmp_path / "readme.txt").write_text("not a member we read", encoding="utf-8")
    members = [archive.Member(p.name, p) for p in sorted(tmp_path.iterdir())]
    assert list(parse_members(members, Context("ak", UTC, print))) == []


@pytest.mark.parametrize("data", [[], "text", 5, None, {"responseId": 7}])
def test_a_query_answer_of_the_wrong_shape_is_bad_data(data: object) -> None:
    emulator = HuaweiCecEmulator(ready_after=0.0)
    original = emulator._query

    def wrong_shape(request: Any, match: Any) -> Any:
        reply = original(request, match)
        body = json.loads(reply.body)
        body["resultData"] = data
        reply.body = json.dumps(body).encode()
        return reply

    emulator._query = wrong_shape  # type: ignore[method-assign]
    with pytest.raises(DataError, match="without a responseId"):
        pull(emulator)
