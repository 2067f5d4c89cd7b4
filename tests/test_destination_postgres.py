"""The PostgreSQL destination against a real server (tests/pg_server.py): pulls through the CLI with the
Youlianyun sandbox, the table contract (types, NULL vs empty string, jsonb), the watermark kept beside
the rows, secrets, errors, concurrent runs and SIGKILL at the commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from cdrfetch.destinations import Chunk, Named, Where
from cdrfetch.destinations.postgres import Postgres
from cdrfetch.errors import AuthError, ConfigError, ExitCode
from cdrfetch.providers.youlianyun.emulator import APP_ID, SID, TOKEN, YoulianyunEmulator
from cdrfetch.records import CALLS
from cdrfetch.testing.harness import MemoryKeyring
from tests.pg_server import Database
from tests.sandbox_cli import pull

SHANGHAI = timezone(timedelta(hours=8))
DAY = timedelta(days=1)
# A Shanghai midnight ten days ago: the emulator serves the bill of every day before today, and a
# --since-last from a few days after it has only a few days to pull.
FIRST = datetime.combine(datetime.now(SHANGHAI).date() - timedelta(days=10), time(), SHANGHAI)


def days(first: int, last: int) -> tuple[str, str, str, str]:
    """--from/--to covering Shanghai days FIRST+first .. FIRST+last (inclusive)."""
    return "--from", (FIRST + first * DAY).isoformat(), "--to", (FIRST + (last + 1) * DAY).isoformat()


def expected_rows(first: int, last: int, sid: str = SID, app_id: str = APP_ID) -> int:
    emulator = YoulianyunEmulator()
    return sum(len(emulator.rows((FIRST + n * DAY).date(), sid, app_id)) for n in range(first, last + 1))


def summary_of(path: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return summary


def watermark(pg: Database, account: str = SID) -> datetime | None:
    rows = pg.query("SELECT complete_until FROM cdrfetch_state WHERE account = %s", account)
    return rows[0][0] if rows else None


# --- through the CLI -------------------------------------------------------------------------------


def test_a_pull_lands_once_and_a_rerun_inserts_nothing(pg: Database, profile: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    first = pull(profile, *days(0, 2), "-o", pg.url(), "--summary-json", str(summary))
    assert first.exit_code == 0, first.stderr
    expected = expected_rows(0, 2)
    assert summary_of(summary)["records"] == {"calls": expected} and expected > 0
    assert pg.query("SELECT count(*), count(DISTINCT record_id) FROM calls") == [(expected, expected)]
    assert watermark(pg) == FIRST + 3 * DAY
    assert len(pg.query("SELECT * FROM cdrfetch_chunks")) == 3

    again = pull(profile, *days(0, 2), "-o", pg.url(), "--summary-json", str(summary))
    assert again.exit_code == 0, again.stderr
    assert summary_of(summary)["records"] == {"calls": 0}
    assert summary_of(summary)["duplicates_dropped"] == expected
    assert pg.query("SELECT count(*) FROM calls") == [(expected,)]


def test_columns_have_real_types_in_the_schema_order(pg: Database, profile: Path) -> None:
    assert pull(profile, *days(0, 0), "-o", pg.url()).exit_code == 0
    columns = pg.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable FROM information_schema.columns"
        " WHERE table_name = 'calls' ORDER BY ordinal_position"
    )
    assert [c[0] for c in columns] == CALLS.names
    types = {name: (kind, precision, scale, nullable) for name, kind, precision, scale, nullable in columns}
    assert types["start_time"] == ("timestamp with time zone", None, None, "NO")
    assert types["end_time"] == ("timestamp with time zone", None, None, "YES")
    assert types["duration_s"] == ("bigint", 64, 0, "YES")
    assert types["cost"] == ("numeric", 18, 6, "YES")
    assert types["caller"] == ("text", None, None, "YES")
    assert types["record_id"] == ("text", None, None, "NO")
    assert types["extra"] == ("jsonb", None, None, "NO")
    key = pg.query(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = 'calls'::regclass AND i.indisprimary"
    )
    assert key == [("record_id",)]
    # extra is real JSON: its members can be queried
    assert pg.query("SELECT count(*) FROM calls WHERE extra->>'appId' = %s", APP_ID)[0][0] > 0


def test_since_last_resumes_from_the_database_on_a_fresh_machine(
    pg: Database, profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pull(profile, *days(0, 1), "-o", pg.url()).exit_code == 0
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "another-machine"))  # no local ledger knows that run
    summary = tmp_path / "summary.json"
    resumed = pull(profile, "--since-last", "-o", pg.url(), "--summary-json", str(summary))
    assert resumed.exit_code == 0, resumed.stderr
    lookback = timedelta(hours=1)  # the provider's default lookback
    assert datetime.fromisoformat(summary_of(summary)["window_start"]) == FIRST + 2 * DAY - lookback
    assert summary_of(summary)["chunks"][0]["label"] == (FIRST + DAY).date().isoformat()  # from the watermark on
    assert pg.query("SELECT count(*) = count(DISTINCT record_id) FROM calls") == [(True,)]
    assert watermark(pg) is not None and watermark(pg) > FIRST + 2 * DAY


def test_an_incompatible_table_is_refused(pg: Database, profile: Path) -> None:
    pg.query("CREATE TABLE calls (provider text NOT NULL, account text NOT NULL, record_id text PRIMARY KEY) ;"
             " ALTER TABLE calls ADD COLUMN call_id bigint NOT NULL")  # fmt: skip
    refused = pull(profile, *days(0, 0), "-o", pg.url())
    assert refused.exit_code == ExitCode.CONFIG
    assert "column 4 is call_id bigint not null, expected call_id text not null" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert pg.query("SELECT count(*) FROM calls") == [(0,)]


def test_a_table_without_a_key_on_record_id_is_refused(pg: Database) -> None:
    destination(pg).open({"calls": CALLS}, WHERE).abort()
    pg.query("ALTER TABLE calls DROP CONSTRAINT calls_pkey")
    with pytest.raises(ConfigError, match="no primary key or unique index on record_id"):
        destination(pg).open({"calls": CALLS}, WHERE)
    pg.query("CREATE UNIQUE INDEX calls_record_id ON calls (record_id)")
    destination(pg).open({"calls": CALLS}, WHERE).abort()  # a unique index serves the merge as well


def test_libpq_url_parameters_apply(pg: Database, profile: Path) -> None:
    refused = pull(profile, *days(0, 0), "-o", pg.url(query="sslmode=require"))  # the test server has no TLS
    assert refused.exit_code == ExitCode.UNAVAILABLE and "SSL" in refused.stderr, refused.stderr
    named = pull(profile, *days(0, 0), "-o", pg.url(query="application_name=billing-import&connect_timeout=5"))
    assert named.exit_code == 0, named.stderr


def test_named_destination_takes_its_password_from_env_and_never_shows_it(
    pg: Database, profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "env-" + uuid.uuid4().hex
    _writer(pg, "cdr_writer", password, profile, schema="cdr")
    monkeypatch.delenv("PGPASSWORD")  # the destination's own secret is the only password there is
    monkeypatch.setenv("CDRFETCH_DESTINATION_BILLING_DB_PASSWORD", password)
    summary = tmp_path / "summary.json"
    result = pull(profile, *days(0, 0), "-o", "billing-db", "--summary-json", str(summary), "-v")
    assert result.exit_code == 0, result.stderr
    assert pg.query("SELECT count(*) FROM cdr.calls") == [(expected_rows(0, 0),)]
    assert password not in result.stdout + result.stderr + summary.read_text(encoding="utf-8")

    monkeypatch.setenv("CDRFETCH_DESTINATION_BILLING_DB_PASSWORD", "wrong-" + password)
    rejected = pull(profile, *days(0, 0), "-o", "billing-db", "--summary-json", str(summary))
    assert rejected.exit_code == ExitCode.AUTH, rejected.stderr
    assert "password authentication failed" in rejected.stderr and "Traceback" not in rejected.stderr
    assert password not in rejected.stdout + rejected.stderr + summary.read_text(encoding="utf-8")


def test_named_destination_takes_its_password_from_the_keyring(
    pg: Database, profile: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    password = "ring-" + uuid.uuid4().hex
    _writer(pg, "ring_writer", password, profile)
    monkeypatch.delenv("PGPASSWORD")
    memory_keyring.set_password("cdrfetch", "destinations/billing-db/password", password)
    result = pull(profile, *days(0, 0), "-o", "billing-db", "-v")
    assert result.exit_code == 0, result.stderr
    assert pg.query("SELECT count(*) FROM public.calls") == [(expected_rows(0, 0),)]
    assert password not in result.stdout + result.stderr


def _writer(pg: Database, role: str, password: str, profile: Path, schema: str | None = None) -> None:
    """A password-authenticated role that may create in the database, named `billing-db` in the config."""
    pg.create_role(role, password)
    pg.query(f'GRANT CREATE ON DATABASE "{pg.name}" TO {role}; GRANT CREATE ON SCHEMA public TO {role}')
    document = yaml.safe_load(profile.read_text(encoding="utf-8"))
    document["destinations"] = {"billing-db": {"url": pg.url(user=role), **({"schema": schema} if schema else {})}}
    profile.write_text(yaml.safe_dump(document), encoding="utf-8")


def test_a_user_without_privileges_is_refused_with_77(
    pg: Database, profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg.create_role("no_rights", "no-rights-password")
    monkeypatch.setenv("PGPASSWORD", "no-rights-password")
    refused = pull(profile, *days(0, 0), "-o", pg.url(user="no_rights"))
    assert refused.exit_code == ExitCode.AUTH, refused.stderr
    assert "permission denied" in refused.stderr and "no-rights-password" not in refused.stderr


def test_a_missing_database_is_a_config_error(pg: Database, profile: Path) -> None:
    missing = pull(profile, *days(0, 0), "-o", pg.cluster.url("no_such_db"))
    assert missing.exit_code == ExitCode.CONFIG, missing.stderr
    assert 'database "no_such_db" does not exist' in missing.stderr


def test_an_unreachable_server_is_69(profile: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = pull(profile, *days(0, 0), "-o", f"postgresql://someone@127.0.0.1:{port}/db")
    assert down.exit_code == ExitCode.UNAVAILABLE
    assert "Connection refused" in down.stderr and "Traceback" not in down.stderr


def test_without_psycopg_one_line_names_the_extra(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['psycopg'] = None; from cdrfetch.cli import main; main()"
    url = "postgresql://someone@127.0.0.1:1/db"
    done = subprocess.run(
        [sys.executable, "-c", hide, "youlianyun", "pull", "--sandbox", "-o", url],
        capture_output=True, text=True, timeout=60, env=_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == ExitCode.CONFIG, done.stderr
    error, hint = done.stderr.strip().splitlines()  # the CLI's one error, and its hint
    assert error == "cdrfetch: error: this destination needs psycopg, which is not installed"
    assert hint.strip() == "hint: pip install 'cdrfetch[postgres]'"


# --- real processes: concurrency and SIGKILL -------------------------------------------------------


def _env(tmp_path: Path, crashpoint: str | None = None) -> dict[str, str]:
    """The test's environment for a child run, with a data directory of its own (another machine)."""
    env = {k: v for k, v in os.environ.items() if k != "CDRFETCH_CRASHPOINT"}
    env["XDG_DATA_HOME"] = str(tmp_path / f"data-{uuid.uuid4().hex[:8]}")
    if crashpoint:
        env["CDRFETCH_CRASHPOINT"] = crashpoint
    return env


def _start(url: str, window: tuple[str, ...], tmp_path: Path, *extra: str, crashpoint: str | None = None) -> Any:
    command = [sys.executable, "-m", "cdrfetch", "youlianyun", "pull", "--sandbox", *window, "-o", url, "-q", *extra]
    return subprocess.Popen(command, env=_env(tmp_path, crashpoint), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


def _finish(process: Any) -> int:
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (0, -signal.SIGKILL), stderr
    return int(process.returncode)


SID2, APP2 = "0" * 31 + "2", "f" * 31 + "2"  # a second account on the emulator (the sandbox's token)
SECOND_ACCOUNT = (
    "--knob", "accounts=" + json.dumps({SID2: TOKEN}), "--knob", "apps=" + json.dumps({APP2: SID2}),
    "--set", f"account_sid={SID2}", "--set", f"app_id={APP2}",
)  # fmt: skip


def test_runs_of_different_accounts_load_in_parallel(pg: Database, tmp_path: Path) -> None:
    first = _start(pg.url(), days(0, 3), tmp_path)
    second = _start(pg.url(), days(0, 3), tmp_path, *SECOND_ACCOUNT)
    assert (_finish(first), _finish(second)) == (0, 0)
    counts = dict(pg.query("SELECT account, count(*) FROM calls GROUP BY account"))
    assert counts == {SID: expected_rows(0, 3), SID2: expected_rows(0, 3, SID2, APP2)}
    assert watermark(pg, SID) == watermark(pg, SID2) == FIRST + 4 * DAY


def test_overlapping_runs_of_one_account_store_each_record_once(pg: Database, tmp_path: Path) -> None:
    early, late = _start(pg.url(), days(0, 3), tmp_path), _start(pg.url(), days(2, 5), tmp_path)
    assert (_finish(early), _finish(late)) == (0, 0)
    assert pg.query("SELECT count(*) FROM calls") == [(expected_rows(0, 5),)]
    assert watermark(pg) == FIRST + 6 * DAY  # every chunk is in: no gap remains


@pytest.mark.parametrize("crashpoint", ["postgres-before-commit", "chunk-spooled"])
def test_sigkill_leaves_no_partial_chunk_and_the_rerun_completes(pg: Database, tmp_path: Path, crashpoint: str) -> None:
    assert _finish(_start(pg.url(), days(0, 0), tmp_path)) == 0
    before = pg.query("SELECT count(*) FROM calls")
    assert _finish(_start(pg.url(), days(1, 2), tmp_path, crashpoint=crashpoint)) == -signal.SIGKILL
    assert pg.query("SELECT count(*) FROM calls") == before == [(expected_rows(0, 0),)]
    assert watermark(pg) == FIRST + DAY
    assert _finish(_start(pg.url(), days(0, 2), tmp_path)) == 0
    assert pg.query("SELECT count(*), count(DISTINCT record_id) FROM calls") == [(expected_rows(0, 2),) * 2]
    assert watermark(pg) == FIRST + 3 * DAY


# --- the destination's API ------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
WHERE = Where("test", "acct", "label", T0)


def row(record_id: str, **values: Any) -> dict[str, Any]:
    base = {"provider": "test", "account": "acct", "record_id": record_id, "call_id": record_id,
            "start_time": T0, "direction": "unknown", "extra": "{}"}  # fmt: skip
    return {**base, **values}


def batch(*rows: dict[str, Any], schema: pa.Schema = CALLS) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(list(rows), schema=schema)


def chunk(start_hour: int, end_hour: int, anchor_hour: int = 0) -> Chunk:
    hour = timedelta(hours=1)
    return Chunk("test", "acct", T0 + start_hour * hour, T0 + end_hour * hour, T0 + anchor_hour * hour)


def destination(pg: Database, **options: Any) -> Postgres:
    return Postgres.from_named(Named("", pg.url(), **options))


def test_null_and_empty_string_stay_apart_and_values_round_trip(pg: Database) -> None:
    load = destination(pg).open({"calls": CALLS}, WHERE)
    stamp = T0 + timedelta(milliseconds=123)
    tricky = 'a "quoted", multi\nline value'
    stored = load.store(chunk(0, 1), {"calls": [batch(
        row("r1", caller="", callee=None, status=tricky, cost=Decimal("12.345600"), end_time=stamp, duration_s=7,
            extra='{"carrier": "x", "note": ""}'),
        row("r2", caller=None, callee="", cost=None),
    )]})  # fmt: skip
    load.abort()
    assert stored == {"calls": 2}
    got = pg.query("SELECT record_id, caller, callee, status, cost, end_time, duration_s, extra FROM calls ORDER BY 1")
    assert got[0] == ("r1", "", None, tricky, Decimal("12.345600"), stamp, 7, {"carrier": "x", "note": ""})
    assert got[1][:3] == ("r2", None, "")
    assert pg.query("SELECT count(*) FROM calls WHERE caller IS NULL") == [(1,)]
    assert pg.query("SELECT extra->>'carrier' FROM calls WHERE record_id = 'r1'") == [("x",)]


def test_out_of_order_chunks_never_make_a_gap_look_complete(pg: Database) -> None:
    target = destination(pg)
    load = target.open({"calls": CALLS}, WHERE)
    load.store(chunk(2, 3), {"calls": [batch(row("late"))]})  # after a gap [0, 2)
    assert target.resume_point("test", "acct") is None
    load.store(chunk(0, 1), {"calls": [batch(row("first"))]})
    assert target.resume_point("test", "acct") == T0 + timedelta(hours=1)  # the gap [1, 2) is still open
    load.store(chunk(1, 2), {"calls": []})  # the gap is filled (an empty chunk is complete too)
    assert target.resume_point("test", "acct") == T0 + timedelta(hours=3)  # across the later chunk
    load.abort()
    assert target.resume_point("test", "other") is None


def test_upsert_updates_a_changed_record_and_plain_merge_does_not(pg: Database) -> None:
    plain = destination(pg).open({"calls": CALLS}, WHERE)
    upsert = destination(pg, upsert=True).open({"calls": CALLS}, WHERE)
    assert plain.store(chunk(0, 1), {"calls": [batch(row("r1", status="ringing"), row("r2"))]}) == {"calls": 2}
    assert plain.store(chunk(0, 1), {"calls": [batch(row("r1", status="answered"))]}) == {"calls": 0}
    assert pg.query("SELECT status FROM calls WHERE record_id = 'r1'") == [("ringing",)]
    assert upsert.store(chunk(0, 1), {"calls": [batch(row("r1", status="answered"), row("r3"))]}) == {"calls": 1}
    merged = pg.query("SELECT record_id, status FROM calls ORDER BY 1")
    assert merged == [("r1", "answered"), ("r2", None), ("r3", None)]
    plain.abort()
    upsert.abort()


def test_an_older_table_gains_the_new_trailing_columns(pg: Database) -> None:
    first = destination(pg).open({"calls": CALLS}, WHERE)
    first.store(chunk(0, 1), {"calls": [batch(row("old"))]})
    first.abort()
    newer = CALLS.append(pa.field("carrier", pa.string()))  # what a later cdrfetch's schema looks like
    load = destination(pg).open({"calls": newer}, WHERE)
    load.store(chunk(1, 2), {"calls": [batch(row("new", carrier="c1"), schema=newer)]})
    load.abort()
    assert pg.query("SELECT record_id, carrier FROM calls ORDER BY 1") == [("new", "c1"), ("old", None)]
    stricter = newer.append(pa.field("region", pa.string(), nullable=False))  # cannot be filled for old rows
    with pytest.raises(ConfigError, match="cannot add the NOT NULL column region"):
        destination(pg).open({"calls": stricter}, WHERE)


def test_tables_created_by_runs_starting_at_once(pg: Database) -> None:
    start, errors = threading.Barrier(4), []

    def open_one() -> None:
        start.wait()
        try:
            destination(pg).open({"calls": CALLS}, WHERE).abort()
        except Exception as exc:  # collected: an exception in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert pg.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'calls'") == [(1,)]


def test_check_reports_creatable_then_compatible_and_refuses_what_is_not(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = destination(pg)
    assert "calls (to be created)" in target.check({"calls": CALLS})
    target.open({"calls": CALLS}, WHERE).abort()
    assert "calls (ok)" in target.check({"calls": CALLS})
    assert "1 column(s) to add" in target.check({"calls": CALLS.append(pa.field("carrier", pa.string()))})
    with pytest.raises(ConfigError, match="column 7 is duration_s bigint, expected duration_s text"):
        target.check({"calls": CALLS.set(6, pa.field("duration_s", pa.string()))})
    pg.create_role("reader", "reader-password")
    monkeypatch.setenv("PGPASSWORD", "reader-password")
    with pytest.raises(AuthError, match="may not write to calls"):
        Postgres.from_named(Named("", pg.url(user="reader"))).check({"calls": CALLS})
