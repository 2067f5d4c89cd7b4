"""Polycom DMA / RPRM billing export: the contract suite plus the protocol's own cases.

Everything runs over real loopback HTTP(S) against the emulator in cdrfetch/sandbox/polycom.py.
The provider-specific tests build the core `Client` and the provider directly, so they can look
at the run summary, the progress reports and the log.
"""

from __future__ import annotations

import collections
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import pyarrow as pa
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from cdrfetch import tabular
from cdrfetch.config import Resolved
from cdrfetch.errors import AuthError, ConfigError, DataError, ExitCode, TemporaryError, UnavailableError
from cdrfetch.providers.polycom import blocks
from cdrfetch.providers.polycom.emulator import NO_ROLE_USER, PolycomEmulator, data
from cdrfetch.providers.polycom.parse import ExportParser, excluded_clusters, parse_time, utc_text
from cdrfetch.providers.polycom.provider import Polycom
from cdrfetch.providers.polycom.status import Verdict, etag_notes, parse_status, rebase
from cdrfetch.sandbox.server import ExpectedCall, SandboxServer
from cdrfetch.testing import harness
from cdrfetch.testing.contract import ProviderContract
from cdrfetch.testing.harness import Pulled
from cdrfetch.windows import Window

UTC = timezone.utc
WINDOW = Window(datetime(2024, 3, 4, 16, tzinfo=UTC), datetime(2024, 3, 5, 16, tzinfo=UTC))
QUICK = {"phase_seconds": 0.01}


class TestPolycomContract(ProviderContract):
    provider = "polycom"
    main_route = "/billing/generate-cdrs"
    answer_route = "/billing/status"
    download_route = "/billing/download-cdrs"
    # a statusType with a lone surrogate is a status this client does not know: it keeps polling (spec
    # §4.2) until poll_timeout, then 75
    hostile_exits: ClassVar[dict[str, int]] = {**ProviderContract.hostile_exits, "lone_surrogate": ExitCode.TEMPORARY}

    def emulator_knobs(self) -> dict[str, Any]:
        return dict(QUICK)


# ---- harness --------------------------------------------------------------------------------------


@contextmanager
def dma(**knobs: Any) -> Iterator[SandboxServer]:
    """A running emulator with quick phases unless told otherwise."""
    with SandboxServer(PolycomEmulator(**{**QUICK, **knobs})) as server:
        yield server


def settings_for(server: SandboxServer, tmp_path: Path, **overrides: Any) -> Resolved:
    """Resolved settings: the emulator's profile with `overrides` (None unsets a setting)."""
    return harness.resolved(Polycom, {**server.emulator.profile(server.url), "poll_timeout": 10.0, **overrides})


def pull(server: SandboxServer, tmp_path: Path, chunks: list[Window] | None = None, **overrides: Any) -> Pulled:
    """Run the provider over `chunks` (default: the test window) and collect its batches."""
    overrides = {"poll_timeout": 10.0, **overrides}
    return harness.pull(server, WINDOW, chunks=chunks or [WINDOW], **overrides)


def expected(server: SandboxServer, window: Window = WINDOW) -> collections.Counter[ExpectedCall]:
    calls = server.emulator.expected_calls(window)
    assert calls
    return collections.Counter(calls)


def paths(server: SandboxServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.emulator.received]


# ---- the asynchronous flow ------------------------------------------------------------------------


def test_flow_posts_dates_with_offsets_polls_and_downloads(tmp_path: Path) -> None:
    with dma() as server:
        result = pull(server, tmp_path)
        post = server.emulator.received[0]
    assert post.method == "POST" and post.path == "/api/rest/billing/generate-cdrs"
    assert post.target.endswith("from-date=2024-03-04T16%3A00%3A00%2B00%3A00&to-date=2024-03-05T16%3A00%3A00%2B00%3A00")
    assert post.header("Authorization") == "Basic c2FuZGJveDpzYW5kYm94LXBhc3N3b3Jk"
    assert "GET /api/rest/billing/status" in paths(server)
    assert paths(server)[-1] == "GET /api/rest/billing/download-cdrs"
    assert result.projection() == expected(server)
    assert result.summary.partial_reasons == [] and result.summary.warnings == []


def test_progress_is_fed_by_the_status_counters(tmp_path: Path) -> None:
    with dma(phase_seconds=0.05) as server:
        result = pull(server, tmp_path, poll_interval=0.01)
    labels = " ".join(status for _, _, status in result.progress)
    assert "RUNNING RETRIEVING_CDR" in labels and "GENERATION_COMPLETE" in labels
    done, total, _ = result.progress[-1]
    assert total and done == total == len(result.rows()) + len(result.rows("conferences"))


def test_conferences_go_to_the_side_table(tmp_path: Path) -> None:
    with dma() as server:
        result = pull(server, tmp_path)
        conferences = server.emulator.expected_conferences(WINDOW)  # type: ignore[attr-defined]
    assert conferences
    assert sorted(r["conf_id"] for r in result.rows("conferences")) == sorted(c.uuid for c in conferences)
    first = next(r for r in result.rows("conferences") if r["conf_id"] == conferences[0].uuid)
    conf = conferences[0]
    assert first["record_id"] == conf.uuid and first["start_time"] == conf.start and first["end_time"] == conf.end
    assert first["cluster"] == conf.cluster and first["owner"] == conf.owner and first["max_participants"] == conf.parts
    assert first["duration_s"] == int((conf.end - conf.start).total_seconds() // 1)
    assert json.loads(first["extra"])["maxResourcesUsed"] == f"video: {conf.parts} voice: 1"


def test_counts_line_and_etag_reach_the_run_summary(tmp_path: Path) -> None:
    with dma() as server:
        result = pull(server, tmp_path)
    notes = result.summary.notes
    assert notes["counts_line"].startswith(f"{len(result.rows())} calls, {len(result.rows('conferences'))} conferences")
    assert notes["etag"].isdigit() and '"' not in notes["etag"]
    stamp = datetime.fromtimestamp(int(notes["etag"]), UTC)
    assert notes["export_time"] == stamp.isoformat().replace("+00:00", "Z")


def test_etag_in_milliseconds(tmp_path: Path) -> None:
    with dma(etag_format="bare-millis") as server:
        notes = pull(server, tmp_path).summary.notes
    assert len(notes["etag"]) == 13
    assert notes["export_time"] == datetime.fromtimestamp(int(notes["etag"]) / 1000, UTC).isoformat().replace(
        "+00:00", "Z"
    )


@pytest.mark.parametrize("knobs", [{"no_location": True}, {"location_host": "localhost:8443"}, {"xml_only": True}])
def test_location_variants_and_xml_status(tmp_path: Path, knobs: dict[str, Any]) -> None:
    with dma(**knobs) as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
        assert "GET /api/rest/billing/download-cdrs" in paths(server)


# ---- every statusType -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "ERROR",
        "ERROR_DB_NOT_READY",
        "ERROR_UNKNOWN_CREATE",
        "ERROR_UNKNOWN_STATUS",
        "ERROR_UNKNOWN_DOWNLOAD",
        "ERROR_X",
    ],
)
def test_error_status_exits_69_with_the_status_message(tmp_path: Path, status: str) -> None:
    with dma(error_status=status) as server, pytest.raises(UnavailableError) as caught:
        pull(server, tmp_path)
    assert caught.value.exit_code == 69
    assert status in caught.value.message and f"CDR export failed ({status})" in caught.value.message
    assert "download-cdrs" not in " ".join(paths(server))


@pytest.mark.parametrize("status", ["WARN_CDR_RESULTS_TRUNCATED", "WARN_CDR_RESULTS_INCOMPLETE", "WARN_NEWER"])
def test_warn_status_writes_rows_and_marks_the_run_partial(tmp_path: Path, status: str) -> None:
    with dma(warn_status=status) as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
    assert len(result.summary.partial_reasons) == 1 and status in result.summary.partial_reasons[0]
    assert any(status in warning for warning in result.summary.warnings)


def test_success_status_is_done(tmp_path: Path) -> None:
    with dma(warn_status="SUCCESS") as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
    assert result.summary.partial_reasons == []


@pytest.mark.parametrize("status", ["UNKNOWN", "SOMETHING_NEWER"])
def test_unknown_states_keep_polling_until_the_timeout(tmp_path: Path, status: str) -> None:
    with dma(warn_status=status) as server, pytest.raises(TemporaryError) as caught:
        pull(server, tmp_path, poll_timeout=0.3, poll_interval=0.02)
    assert caught.value.exit_code == 75
    assert "download-cdrs" not in " ".join(paths(server))


def test_never_ready_export_times_out_with_75(tmp_path: Path) -> None:
    with dma(never_ready=True) as server, pytest.raises(TemporaryError) as caught:
        pull(server, tmp_path, poll_timeout=0.3, poll_interval=0.02)
    assert "poll_timeout" in (caught.value.hint or "")


def test_not_started_before_the_post() -> None:
    with dma() as server:
        body = requests.get(f"{server.url}/api/rest/billing/status", auth=("sandbox", "sandbox-password")).json()
    assert body == {"actionType": "NOT_STARTED", "statusType": "NOT_STARTED", "downloadReady": False}


# ---- one export at a time -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["status", "409", "503"])
def test_busy_dma_is_waited_for_then_posted_again(tmp_path: Path, mode: str) -> None:
    with dma(busy_mode=mode, foreign_export_seconds=0.3) as server:
        result = pull(server, tmp_path, busy_retry_interval=0.05, poll_interval=0.02)
        assert result.projection() == expected(server)
        posts = sum(p.startswith("POST") for p in paths(server))
    assert posts >= 2


@pytest.mark.parametrize("mode", ["status", "409", "503"])
def test_busy_until_the_timeout_exits_75(tmp_path: Path, mode: str) -> None:
    with dma(busy_mode=mode, foreign_export_seconds=60) as server, pytest.raises(TemporaryError) as caught:
        pull(server, tmp_path, busy_retry_interval=0.05, poll_interval=0.02, poll_timeout=0.4)
    assert caught.value.exit_code == 75 and "another CDR export" in caught.value.message


def test_someone_elses_finished_export_is_never_downloaded(tmp_path: Path) -> None:
    with dma(stale_complete=True, phase_seconds=0.1) as server:
        result = pull(server, tmp_path, poll_interval=0.01)
        assert result.projection() == expected(server)
        assert sum("download-cdrs" in p for p in paths(server)) == 1


# ---- downloads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("knobs", [{"truncate_zip": "short"}, {"truncate_zip": "lying"}, {"corrupt_zip": True}])
def test_broken_zip_is_downloaded_again(tmp_path: Path, knobs: dict[str, Any]) -> None:
    with dma(**knobs) as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
        assert sum("download-cdrs" in p for p in paths(server)) == 2


def test_persistently_corrupt_zip_exits_65(tmp_path: Path) -> None:
    with dma(corrupt_zip=True, corrupt_times=100) as server, pytest.raises(DataError) as caught:
        pull(server, tmp_path)
    assert "CRC" in caught.value.message and caught.value.exit_code == 65


# ---- legacy GET and RPRM --------------------------------------------------------------------------


def test_legacy_one_shot_get(tmp_path: Path) -> None:
    with dma(legacy_only=True, legacy_delay=0.01) as server:
        result = pull(server, tmp_path, legacy=True)
        assert result.projection() == expected(server)
        assert paths(server) == ["GET /api/rest/billing"]
    assert result.summary.notes["etag"].isdigit() and result.rows("conferences")


def test_rprm_without_legacy_is_a_config_error_naming_legacy(tmp_path: Path) -> None:
    with dma(legacy_only=True) as server, pytest.raises(ConfigError) as caught:
        pull(server, tmp_path)
    assert caught.value.exit_code == 78 and "legacy: true" in (caught.value.hint or "")


# ---- authentication -------------------------------------------------------------------------------


def test_wrong_password_is_77_without_retry(tmp_path: Path) -> None:
    with dma() as server, pytest.raises(AuthError) as caught:
        pull(server, tmp_path, password="not-the-password")
    assert "401" in caught.value.message and "password" in (caught.value.hint or "")
    assert server.emulator.failed_auth == 1  # type: ignore[attr-defined]


def test_user_without_the_role_is_77_with_a_role_hint(tmp_path: Path) -> None:
    with dma() as server, pytest.raises(AuthError) as caught:
        pull(server, tmp_path, username=NO_ROLE_USER[0], password=NO_ROLE_USER[1])
    assert "403" in caught.value.message and "role" in (caught.value.hint or "")


def test_legacy_get_without_the_role_is_77(tmp_path: Path) -> None:
    with dma(legacy_delay=0) as server, pytest.raises(AuthError) as caught:
        pull(server, tmp_path, legacy=True, username=NO_ROLE_USER[0], password=NO_ROLE_USER[1])
    assert "role" in (caught.value.hint or "")


def test_emulator_challenges_with_www_authenticate() -> None:
    with dma() as server:
        reply = requests.get(f"{server.url}/api/rest/billing/status")
    assert reply.status_code == 401 and reply.headers["WWW-Authenticate"] == 'Basic realm="RealPresence DMA"'


def test_credentials_are_utf8(tmp_path: Path) -> None:
    with dma() as server:
        server.emulator.users["zoë"] = "pässwörd-€"  # type: ignore[attr-defined]
        result = pull(server, tmp_path, username="zoë", password="pässwörd-€")
    assert result.rows()


# ---- TLS ------------------------------------------------------------------------------------------


def test_tls_with_ca_bundle_verifies(tmp_path: Path) -> None:
    with dma(tls=True) as server:
        assert server.url.startswith("https://")
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)


def test_tls_without_the_ca_fails_with_a_clear_hint(tmp_path: Path) -> None:
    with dma(tls=True) as server, pytest.raises(ConfigError) as caught:
        pull(server, tmp_path, ca_bundle=None)
    assert "TLS verification of 127.0.0.1" in caught.value.message
    assert "certificate verify failed" in caught.value.message
    assert "`ca_bundle`" in (caught.value.hint or "") and "`insecure: true`" in (caught.value.hint or "")
    assert server.emulator.received == []  # nothing, credentials included, went over the unverified link


def test_tls_insecure_works_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with dma(tls=True) as server, caplog.at_level(logging.WARNING):
        result = pull(server, tmp_path, ca_bundle=None, insecure=True)
    assert result.rows()
    assert any("TLS verification is OFF" in r.getMessage() for r in caplog.records)


def test_ca_bundle_and_insecure_together_are_refused(tmp_path: Path) -> None:
    with dma(tls=True) as server, pytest.raises(ConfigError, match="contradict"):
        pull(server, tmp_path, insecure=True)


# ---- the zip's content ----------------------------------------------------------------------------


def test_without_header_rows_positions_map_and_the_rest_is_col_n(tmp_path: Path) -> None:
    with dma(header=False) as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
    assert all(row["callee"] is None for row in result.rows())
    extra = json.loads(result.rows()[0]["extra"])
    assert "col_9" in extra and "destEndpoint" not in extra and extra["dialin"] in ("TRUE", "FALSE")
    assert result.rows("conferences") and all(r["cluster"] in data.CLUSTERS for r in result.rows("conferences"))


def test_itp_rows_take_the_primary_codec(tmp_path: Path) -> None:
    with dma(itp_rows=3) as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
    itp = [json.loads(r["extra"]) for r in result.rows() if "itp_codecs" in r["extra"]]
    assert len(itp) == 3 and all(e["itp_codecs"] == 3 and e["callUuid"].count(",") == 2 for e in itp)


def test_members_are_classified_by_content(tmp_path: Path) -> None:
    with dma(member_names="opaque") as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
    assert result.rows("conferences") and result.summary.notes["counts_line"]


def test_unknown_row_types_are_counted_and_warned(tmp_path: Path) -> None:
    with dma(unknown_type_rows=2) as server:
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
    assert any("REC x2" in w for w in result.summary.warnings)


def test_excluded_clusters_make_the_run_partial(tmp_path: Path) -> None:
    with dma(excluded_clusters=("dma-west",)) as server:
        result = pull(server, tmp_path)
    assert result.rows() and "dma-west" in result.summary.partial_reasons[0]


def test_counts_mismatch_is_warned(tmp_path: Path) -> None:
    with dma(counts_mismatch=True) as server:
        result = pull(server, tmp_path)
    assert any("counts line says" in w for w in result.summary.warnings)
    assert result.summary.partial_reasons == []


def test_dst_change_inside_a_record(tmp_path: Path) -> None:
    """2024-03-10 07:00Z: New York goes from -05:00 to -04:00; each time keeps its own offset."""
    window = Window(datetime(2024, 3, 10, 4, tzinfo=UTC), datetime(2024, 3, 10, 8, tzinfo=UTC))
    with dma(calls_per_hour=8) as server:
        result = pull(server, tmp_path, chunks=[window])
        assert result.projection() == expected(server, window)
    crossing = [r for r in result.rows() if r["end_time"] and r["start_time"].hour < 7 <= r["end_time"].hour]
    assert crossing
    raw = json.loads(crossing[0]["extra"])
    assert raw["version"] == "1"
    zone = PolycomEmulator().tz
    start_text = data.dma_time(crossing[0]["start_time"], zone)
    end_text = data.dma_time(crossing[0]["end_time"], zone)
    assert start_text.endswith("-05:00") and end_text.endswith("-04:00")


def test_rows_at_the_window_end_belong_to_the_next_window(tmp_path: Path) -> None:
    boundary = _an_hour_with_a_call_on_the_hour()
    first = Window(boundary - timedelta(hours=2), boundary)
    second = Window(boundary, boundary + timedelta(hours=2))
    with dma() as server:
        result = pull(server, tmp_path, chunks=[first])
        later = pull(server, tmp_path, chunks=[second])
        served = server.emulator.received
    assert all(r["start_time"] < boundary for r in result.rows())
    assert any(r["start_time"] == boundary for r in later.rows())
    assert served  # the emulator did serve the boundary row in the first export (inclusive to-date):
    calls, _ = data.records(0, "sandbox", first.start, first.end, 4, inclusive=True)
    assert any(c.start == boundary for c in calls)


def test_record_id_is_call_uuid_and_utc_start(tmp_path: Path) -> None:
    with dma() as server:
        result = pull(server, tmp_path)
    for row in result.rows():
        millis = row["start_time"].microsecond // 1000
        stamp = row["start_time"].strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}" if millis else "") + "Z"
        assert row["record_id"] == f"{row['call_id']}:{stamp}"
    assert len({r["record_id"] for r in result.rows()}) == len(result.rows())
    assert len({r["call_id"] for r in result.rows()}) < len(result.rows())  # segments share a callUuid


def _an_hour_with_a_call_on_the_hour() -> datetime:
    hour = datetime(2024, 3, 4, tzinfo=UTC)
    while not any(c.start == hour for c in data.hour_records(0, "sandbox", hour, 4)[0]):
        hour += timedelta(hours=1)
    return hour


# ---- the emulator's own protocol checks -----------------------------------------------------------


def test_emulator_rejects_a_raw_plus_in_the_dates() -> None:
    with dma() as server:
        reply = requests.post(
            f"{server.url}/api/rest/billing/generate-cdrs?from-date=2024-01-01T00:00:00+00:00",
            auth=("sandbox", "sandbox-password"),
        )
    assert reply.status_code == 400


def test_emulator_serves_one_export_at_a_time() -> None:
    auth = ("sandbox", "sandbox-password")
    with dma(phase_seconds=5, busy_mode="409") as server:
        url = f"{server.url}/api/rest/billing/generate-cdrs"
        assert requests.post(url, auth=auth).status_code == 202
        assert requests.post(url, auth=auth).status_code == 409


def test_cli_writes_the_side_table_beside_the_calls(tmp_path: Path, memory_keyring: Any) -> None:
    import yaml

    from cdrfetch.testing.harness import read_table, run_cli

    with dma() as server:
        profile = server.emulator.profile(server.url)
        memory_keyring.set_password("cdrfetch", "default/polycom/password", profile.pop("password"))
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"profiles": {"default": {"polycom": profile}}}), encoding="utf-8")
        out = tmp_path / "out.parquet"
        result = run_cli(
            "polycom", "pull", "--config", str(config), "--from", "2024-03-04", "--to", "2024-03-05", "-o", str(out)
        )
    assert result.exit_code == 0, result.stderr
    conferences = read_table(tmp_path / "out.conferences.parquet")
    assert conferences.schema.equals(Polycom.output_tables()["conferences"])
    assert conferences.num_rows > 0 and read_table(out).num_rows > 0


def test_partial_result_exits_3_unless_allow_partial(tmp_path: Path, memory_keyring: Any) -> None:
    import yaml

    from cdrfetch.testing.harness import run_cli

    with dma(warn_status="WARN_CDR_RESULTS_INCOMPLETE") as server:
        profile = server.emulator.profile(server.url)
        memory_keyring.set_password("cdrfetch", "default/polycom/password", profile.pop("password"))
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"profiles": {"default": {"polycom": profile}}}), encoding="utf-8")
        base = ["polycom", "pull", "--config", str(config), "--from", "2024-03-04", "--to", "2024-03-05"]
        partial = run_cli(*base, "-o", str(tmp_path / "a.csv"))
        allowed = run_cli(*base, "-o", str(tmp_path / "b.csv"), "--allow-partial")
        setting = run_cli(*base, "-o", str(tmp_path / "c.csv"), "--set", "allow_partial=true")
    assert partial.exit_code == 3, partial.stderr
    assert "WARN_CDR_RESULTS_INCOMPLETE" in partial.stderr and (tmp_path / "a.csv").exists()
    assert allowed.exit_code == 0, allowed.stderr
    assert setting.exit_code == 0 and "WARN_CDR_RESULTS_INCOMPLETE" in setting.stderr, setting.stderr


# ---- parsing units: the spec's time examples, status documents, URLs, counts --------------------


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2001-10-26T21:32:52", "2001-10-26T21:32:52Z"),
        ("2001-10-26T21:32:52+02:00", "2001-10-26T19:32:52Z"),
        ("2001-10-26T19:32:52Z", "2001-10-26T19:32:52Z"),
        ("2001-10-26T19:32:52+00:00", "2001-10-26T19:32:52Z"),
        ("2001-10-26T21:32:52.12679", "2001-10-26T21:32:52.126Z"),
        ("2024-03-10T01:59:59.250-05:00", "2024-03-10T06:59:59.250Z"),
        ("2024-03-10T03:00:00.000-04:00", "2024-03-10T07:00:00Z"),
        ("2024-01-01T09:30:00-0130", "2024-01-01T11:00:00Z"),
    ],
)
def test_xs_datetime_examples_to_utc(text: str, utc: str) -> None:
    value, had_offset = parse_time(text)
    assert utc_text(value) == utc
    assert had_offset == (text[-6] in "+-" or text.endswith("Z") or text[-5] in "+-")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 1, 1)), st.integers(-14 * 60, 14 * 60))
def test_any_offset_round_trips_to_the_same_instant(local: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    instant = local.replace(tzinfo=zone, microsecond=local.microsecond // 1000 * 1000)
    assert parse_time(data.dma_time(instant, zone))[0] == instant.astimezone(UTC)


@given(st.lists(st.text(alphabet="abc ,\"'x1", max_size=6), min_size=0, max_size=40))
def test_call_rows_tolerate_any_trailing_columns(tail: list[str]) -> None:
    lead = ["1", "CALL", "VMR", "uuid-1", "TRUE", "2024-01-01T10:00:00.000+01:00", "", "sip:a@x"]
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    (row,) = _as_rows(parser, feed(parser, "calls.csv", _csv_line(lead + tail).encode()))  # either path
    assert row["record_id"] == "uuid-1:2024-01-01T09:00:00Z" and row["direction"] == "inbound"
    extra = json.loads(row["extra"])
    assert {k for k in extra if k.startswith("col_")} == {f"col_{9 + i}" for i, v in enumerate(tail) if v.strip()}


def test_missing_trailing_columns_become_null() -> None:
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    feed(
        parser,
        "c.csv",
        b"1,CALL,PT-PT,u-2,FALSE,2024-01-01T10:00:00Z\r\n1,CONF,AD-HOC,c1,conf-9,2024-01-01T10:00:00Z\n",
    )
    (call,) = parser.export.calls
    (conf,) = parser.export.conferences
    assert call["end_time"] is None and call["duration_s"] is None and call["caller"] is None
    assert call["direction"] == "unknown" and call["callee"] is None
    assert conf["record_id"] == "conf-9" and conf["cluster"] == "c1" and conf["max_participants"] is None


def test_header_names_win_over_positions_in_any_case() -> None:
    text = "Version,TYPE,startTime,callUuid,destEndpoint,origEndpoint\n1,CALL,2024-01-01T10:00:00Z,u-3,sip:b,sip:a\n"
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    feed(parser, "x.csv", text.encode())
    (call,) = parser.export.calls
    assert (call["call_id"], call["caller"], call["callee"]) == ("u-3", "sip:a", "sip:b")


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("1,CALL,VMR,,TRUE,2024-01-01T10:00:00Z", "callUuid is empty"),
        ("1,CALL,VMR,u,TRUE,yesterday", "startTime 'yesterday'"),
        ("1,CONF,PCO,c,,2024-01-01T10:00:00Z", "confUUID is empty"),
    ],
)
def test_missing_mandatory_values_name_member_and_line(line: str, where: str) -> None:
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(DataError) as caught:
        feed(parser, "calls.csv", f"1,CALL,VMR,ok,TRUE,2024-01-01T10:00:00Z\n\n{line}\n".encode())
    assert "calls.csv line 3" in caught.value.message and where in caught.value.message


def test_negative_duration_is_null_with_a_warning() -> None:
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    feed(parser, "calls.csv", b"1,CALL,VMR,u,TRUE,2024-01-01T10:00:00Z,2024-01-01T09:00:00Z\n")
    assert parser.export.calls[0]["duration_s"] is None and parser.export.warnings


@pytest.mark.parametrize(
    ("line", "excluded"),
    [
        ("12 calls, 3 conferences, included clusters: a;b, excluded clusters: none", []),
        ("calls=12 conferences=3 included=dma1 excluded=", []),
        ("12,3,dma1,-", []),
        ("Calls: 12 Conferences: 3 Clusters included: east Clusters excluded: west, north", ["west", "north"]),
    ],
)
def test_counts_line_is_read_loosely(line: str, excluded: list[str]) -> None:
    assert excluded_clusters(line) == excluded


@pytest.mark.parametrize(
    "body",
    [
        b'{"statusType":"RUNNING","actionType":"CREATING_CDR_FILE","downloadReady":false}',
        b'{"plcmBillingStatus":{"statusType":"RUNNING","actionType":"CREATING_CDR_FILE","downloadReady":false}}',
        b'{"status-type":"RUNNING","action-type":"CREATING_CDR_FILE","download-ready":"false"}',
        b'<plcm-billing-status xmlns="urn:com:polycom:api:rest:plcm-billing-status"><status-type>RUNNING'
        b"</status-type><action-type>CREATING_CDR_FILE</action-type><download-ready>false</download-ready>"
        b"</plcm-billing-status>",
    ],
)
def test_status_documents_in_every_accepted_shape(body: bytes) -> None:
    status = parse_status(body, "")
    assert (status.status_type, status.action_type, status.download_ready) == ("RUNNING", "CREATING_CDR_FILE", False)
    assert status.verdict() is Verdict.WAIT


@pytest.mark.parametrize(
    ("status_type", "ready", "verdict"),
    [
        ("NOT_STARTED", False, Verdict.WAIT),
        ("RUNNING", False, Verdict.WAIT),
        ("UNKNOWN", False, Verdict.WAIT),
        ("SUCCESS", True, Verdict.DONE),
        ("SUCCESS", False, Verdict.WAIT),
        ("GENERATION_COMPLETE", True, Verdict.DONE),
        ("GENERATION_COMPLETE", False, Verdict.WAIT),
        ("WARN_CDR_RESULTS_TRUNCATED", True, Verdict.PARTIAL),
        ("WARN_CDR_RESULTS_INCOMPLETE", True, Verdict.PARTIAL),
        ("WARN_CDR_RESULTS_INCOMPLETE", False, Verdict.WAIT),
        ("ERROR_ANOTHER_CDR_IS_BEING_GENERATED", False, Verdict.BUSY),
        ("ERROR", False, Verdict.ERROR),
        ("ERROR_DB_NOT_READY", False, Verdict.ERROR),
        ("ERROR_UNKNOWN_CREATE", False, Verdict.ERROR),
        ("ERROR_UNKNOWN_STATUS", False, Verdict.ERROR),
        ("ERROR_UNKNOWN_DOWNLOAD", False, Verdict.ERROR),
        ("ERROR_FROM_A_NEWER_RELEASE", False, Verdict.ERROR),
        ("WARN_FROM_A_NEWER_RELEASE", True, Verdict.PARTIAL),
        ("PAUSED", False, Verdict.NEW),
    ],
)
def test_every_status_type_has_its_verdict(status_type: str, ready: bool, verdict: Verdict) -> None:
    body = json.dumps({"statusType": status_type, "actionType": "UNKNOWN", "downloadReady": ready}).encode()
    assert parse_status(body, "application/vnd.plcm.plcm-billing-status+json").verdict() is verdict


def test_status_without_status_type_is_retryable_bad_data() -> None:
    with pytest.raises(DataError) as caught:
        parse_status(b'{"actionType":"RUNNING"}', "")
    assert caught.value.retryable


def test_ownership_compares_instants() -> None:
    body = (
        b'{"statusType":"SUCCESS","fromDate":"2024-03-04T11:00:00.000-05:00","toDate":"2024-03-05T11:00:00.000-05:00"}'
    )
    status = parse_status(body, "")
    assert status.owned_by(WINDOW.start, WINDOW.end) is True
    assert status.owned_by(WINDOW.start, WINDOW.end + timedelta(hours=1)) is False
    assert parse_status(b'{"statusType":"SUCCESS"}', "").owned_by(WINDOW.start, WINDOW.end) is None


@pytest.mark.parametrize(
    ("url", "rebased"),
    [
        (None, "https://dma.example:8443/api/rest/billing/status"),
        ("https://localhost:8443/api/rest/billing/status", "https://dma.example:8443/api/rest/billing/status"),
        ("http://evil.example/api/rest/billing/status?x=1", "https://dma.example:8443/api/rest/billing/status?x=1"),
        ("/api/rest/billing/download-cdrs", "https://dma.example:8443/api/rest/billing/download-cdrs"),
        ("billing/status", "https://dma.example:8443/api/rest/billing/status"),
    ],
)
def test_urls_from_the_dma_are_rebased_onto_base_url(url: str | None, rebased: str) -> None:
    assert rebase(url, "https://dma.example:8443/api/rest", "/billing/status") == rebased


@pytest.mark.parametrize(
    ("header", "notes"),
    [
        ('"1704067500"', {"etag": "1704067500", "export_time": "2024-01-01T00:05:00Z"}),
        ('W/"1704067500000"', {"etag": "1704067500000", "export_time": "2024-01-01T00:05:00Z"}),
        ("abc", {"etag": "abc"}),
        (None, {}),
    ],
)
def test_etag_forms(header: str | None, notes: dict[str, str]) -> None:
    assert etag_notes(header) == notes


def test_account_is_the_dma_host(tmp_path: Path) -> None:
    with dma() as server, harness.connected(server, base_url="https://DMA.Example.com:8443/api/rest") as provider:
        assert provider.account == "dma.example.com"


def test_vanished_export_is_generated_once_more(tmp_path: Path) -> None:
    with dma() as server:
        server.emulator.faults.fail_next(1, 404, "download-cdrs")
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
        assert sum(p.startswith("POST") for p in paths(server)) == 2


def test_export_that_keeps_vanishing_is_69(tmp_path: Path) -> None:
    with dma() as server, pytest.raises(UnavailableError):
        server.emulator.faults.fail_next(2, 409, "download-cdrs")
        pull(server, tmp_path)


def _csv_line(cells: list[str]) -> str:
    import csv

    out = io.StringIO()
    csv.writer(out).writerow(cells)
    return out.getvalue()


# ---- the column-wise fast path agrees with the row-by-row parser ----------------------------------

_PRINTABLE = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(' ",\\'), max_size=6)
_ANY = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=4
)  # control characters: the row path
_CELL = st.one_of(*[_PRINTABLE] * 15, _ANY)
_INSTANT = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))


@st.composite
def _call_cells(draw: st.DrawFn, width: int) -> list[str]:
    zone = timezone(timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60))))
    start = draw(_INSTANT).replace(microsecond=draw(st.sampled_from([0, 250_000, 999_000])))
    end = "" if draw(st.booleans()) else data.dma_time(start + timedelta(seconds=draw(st.integers(-5, 9000))), zone)
    lead = [draw(st.sampled_from(["1", "2"])), draw(st.sampled_from(["CALL", "call", "CALL "])), draw(_CELL)]
    lead += [draw(st.text("abc-0123456789", min_size=1, max_size=8)), draw(st.sampled_from(["TRUE", "false", ""]))]
    lead += [data.dma_time(start, zone), end]
    return lead + [draw(_CELL) for _ in range(width - len(lead))]


@contextmanager
def tiny_blocks(cores: int) -> Iterator[None]:
    """Blocks of about a row over `cores` threads, so small members take the large-member code path."""
    with (
        mock.patch.object(tabular, "PART_MIN_ROWS", 1),
        mock.patch.object(blocks, "BLOCK_BYTES", 150),
        mock.patch("os.cpu_count", return_value=cores),
    ):
        yield


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(7, 12), st.booleans(), _INSTANT, st.integers(1, 3))
def test_columnwise_and_row_paths_agree(
    draw: st.DataObject, width: int, header: bool, chunk_end: datetime, cores: int
) -> None:
    rows = draw.draw(st.lists(_call_cells(width), min_size=1, max_size=8))
    names = ["version", "type", "callType", "callUuid", "dialin", "startTime", "endTime", "origEndpoint"]
    names += ["destEndpoint", "userDataA", "failureSignalingCode", "displays"]
    text = _csv_text([names[:width]] if header else [], rows)
    fast = ExportParser(account="dma", chunk_end=chunk_end)
    slow = ExportParser(account="dma", chunk_end=chunk_end, columnwise=False)
    # tiny blocks and parts, so block-by-block reading on separate threads is exercised too
    with tiny_blocks(cores):
        fast_rows = _as_rows(fast, feed(fast, "calls.csv", text.encode()))
    assert fast_rows == _as_rows(slow, feed(slow, "calls.csv", text.encode()))
    assert (fast.export.rows_in_file, fast.export.after_window) == (slow.export.rows_in_file, slow.export.after_window)


@pytest.mark.parametrize("cores", [1, 2, 5])
def test_the_columnwise_path_takes_the_emulators_calls(cores: int) -> None:
    emulator = PolycomEmulator()
    body, _ = data.export_zip(emulator, WINDOW.start, WINDOW.end)
    import zipfile

    text = zipfile.ZipFile(io.BytesIO(body)).read("calls.csv")
    fast = ExportParser(account="dma", chunk_end=WINDOW.end)
    slow = ExportParser(account="dma", chunk_end=WINDOW.end, columnwise=False)
    with tiny_blocks(cores):
        assert tabular.in_parallel(pa.table({"n": range(10)}), len) == [10 // cores] * cores
        tables = feed(fast, "calls.csv", text)
    assert len(tables) > 1 and not fast.export.calls  # the fast path did the work, block by block
    assert _as_rows(fast, tables) == _as_rows(slow, feed(slow, "calls.csv", text))


_GOOD = "1,CALL,VMR,u{},TRUE,2024-01-01T10:00:00Z,2024-01-01T11:05:00+01:00,sip:a@x\r\n"


def test_an_irregular_row_sends_its_block_and_the_rest_row_by_row() -> None:
    itp = '1,CALL,ITP,"u-a,u-b",TRUE,2024-01-01T11:00:00Z\r\n'  # ITP lists are read row by row
    text = ("".join(_GOOD.format(i) for i in range(6)) + itp + "".join(_GOOD.format(i) for i in range(6, 9))).encode()
    fast = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    with tiny_blocks(2):
        tables = feed(fast, "calls.csv", text)
    slow = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC), columnwise=False)
    assert tables and fast.export.calls  # both paths took part
    assert _as_rows(fast, tables) == _as_rows(slow, feed(slow, "calls.csv", text))
    assert fast.export.rows_in_file == slow.export.rows_in_file == {"CALL": 10, "CONF": 0}


@pytest.mark.parametrize("header", [False, True])
def test_a_bad_row_after_regular_blocks_names_its_line(header: bool) -> None:
    head = "version,type,callType,callUuid,dialin,startTime,endTime,origEndpoint\r\n" if header else ""
    text = head + "".join(_GOOD.format(i) for i in range(9)) + "1,CALL,VMR,,TRUE,2024-01-01T10:00:00Z\r\n"
    parser = ExportParser(account="dma", chunk_end=datetime(2030, 1, 1, tzinfo=UTC))
    with tiny_blocks(2), pytest.raises(DataError) as caught:
        feed(parser, "calls.csv", text.encode())
    assert f"calls.csv line {10 + header}: callUuid is empty" in caught.value.message


def drain(generator: Any) -> tuple[list[Any], Any]:
    """(what a generator yields, what it returns)."""
    items = []
    while True:
        try:
            items.append(next(generator))
        except StopIteration as finished:
            return items, finished.value


def feed(parser: ExportParser, name: str, data: bytes) -> list[pa.Table]:
    """Parse one member given as bytes; the calls tables it read column-wise."""
    return list(parser.member(name, io.BytesIO(data)))


def _as_rows(parser: ExportParser, tables: list[pa.Table]) -> list[dict[str, Any]]:
    """Every call row of a parser, typed by the schema (the row path leaves absent columns out)."""
    from cdrfetch.records import CALLS

    rows = [r for t in tables for r in t.to_pylist()]
    return rows + pa.Table.from_pylist(parser.export.calls, schema=CALLS).to_pylist()


def _csv_text(head: list[list[str]], rows: list[list[str]]) -> str:
    import csv

    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(head + rows)
    return out.getvalue()


def test_refused_media_type_is_asked_again_with_any_type(tmp_path: Path) -> None:
    with dma() as server:
        server.emulator.faults.fail_next(1, 406, "/billing/status")
        result = pull(server, tmp_path)
        assert result.projection() == expected(server)
        accepts = [r.header("Accept") for r in server.emulator.received if r.path.endswith("/status")]
    assert accepts[0] and accepts[0].startswith("application/vnd.plcm.plcm-billing-status+json")
    assert accepts[1] == "*/*"


def test_media_type_refused_twice_is_bad_data(tmp_path: Path) -> None:
    with dma() as server, pytest.raises(DataError, match="media type refused"):
        server.emulator.faults.fail_next(2, 415, "/billing/generate-cdrs")
        pull(server, tmp_path)


def test_persistent_truncation_is_not_retried_beyond_the_budget(tmp_path: Path) -> None:
    with dma(truncate_zip="lying", truncate_times=1000) as server, pytest.raises(UnavailableError):
        pull(server, tmp_path, retries=2)
    assert sum("download-cdrs" in p for p in paths(server)) == 3


def test_check_reads_the_status(tmp_path: Path) -> None:
    with dma() as server, harness.connected(server) as provider:
        assert "NOT_STARTED" in provider.check()


def test_check_in_legacy_mode_exports_an_empty_window(tmp_path: Path) -> None:
    with dma(legacy_only=True, legacy_delay=0) as server:
        with harness.connected(server, legacy=True) as provider:
            assert "legacy" in provider.check()
        assert paths(server) == ["GET /api/rest/billing"]


def test_gbk_members_are_read_with_a_warning_and_utf8_bom_is_stripped(tmp_path: Path) -> None:
    import zipfile

    from cdrfetch.providers.polycom.export import read_export, unpack

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("calls.csv", "1,CALL,VMR,u-1,TRUE,2024-01-01T10:00:00Z,,会议室\r\n".encode("gbk"))
        bundle.writestr(
            "conferences.csv", "\ufeffversion,type,confUUID,startTime\r\n1,CONF,c-1,2024-01-01T10:00:00Z\r\n"
        )
        bundle.writestr("counts.txt", "1 calls, 1 conferences, excluded clusters: none")
    end = datetime(2030, 1, 1, tzinfo=UTC)
    (tmp_path / "unpacked").mkdir()
    members = unpack(archive, tmp_path / "unpacked", "export.zip")
    reading = read_export(members, Polycom.output_tables(), account="dma", chunk_end=end)
    batches, (export, excluded, warnings) = drain(reading)
    assert export.calls[0]["caller"] == "会议室" and export.conferences[0]["conf_id"] == "c-1"
    assert [(b.table, b.data.num_rows) for b in batches] == [("calls", 1), ("conferences", 1)]
    assert excluded == [] and warnings == ["calls.csv is not UTF-8; read as GBK"]


@pytest.mark.parametrize("etag", ['"' + "9" * 5000 + '"', '"99999999999999999999"', '"9999999999999999"', "\x00\xff"])
def test_an_absurd_etag_stays_a_plain_note(etag: str) -> None:
    notes = etag_notes(etag)
    assert len(notes["etag"]) <= 200 and "export_time" not in notes
