"""Fleets: work units (plan, shard, run-unit), `pull --all` over many accounts, and the Python API."""

from __future__ import annotations

import collections
import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import cdrfetch
from cdrfetch.errors import CdrfetchError, UsageError
from cdrfetch.fleet import Unit, shard
from cdrfetch.fleetrun import combined_exit_code
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing.harness import projection, run_cli
from cdrfetch.windows import Window, zone
from tests.sandbox_cli import account

FROM, TO = "2026-11-27", "2026-11-30"  # three days
SHANGHAI = zone("Asia/Shanghai")


def plan(config: Path, *args: str) -> list[dict[str, object]]:
    result = run_cli("plan", "--config", str(config), "--json", *args)
    assert result.exit_code == 0, result.stderr
    units: list[dict[str, object]] = json.loads(result.stdout)
    return units


def test_the_same_inputs_give_the_same_units(fleet_config: Path, tmp_path: Path) -> None:
    first = plan(fleet_config, "--from", FROM, "--to", TO, "-o", f"{tmp_path}/out/")
    again = plan(fleet_config, "--from", FROM, "--to", TO, "-o", f"{tmp_path}/out/")
    assert first == again
    assert len(first) == 6  # two accounts, three daily chunks each
    assert len({unit["id"] for unit in first}) == 6
    other = plan(fleet_config, "--from", FROM, "--to", TO, "-o", f"{tmp_path}/elsewhere/")
    assert not {u["id"] for u in first} & {u["id"] for u in other}  # the destination is part of a unit


def test_shards_split_the_units_exactly_once(fleet_config: Path, tmp_path: Path) -> None:
    units = [Unit.from_dict(u) for u in plan(fleet_config, "--from", FROM, "--to", TO, "-o", f"{tmp_path}/")]
    shares = [shard(units, index, 4) for index in range(4)]
    assert sorted(u.id for share in shares for u in share) == sorted(u.id for u in units)
    assert shard(list(reversed(units)), 1, 4) == list(reversed(shares[1]))  # order-free
    with pytest.raises(UsageError):
        shard(units, 4, 4)


def test_an_edited_unit_is_refused(fleet_config: Path, tmp_path: Path) -> None:
    [unit, *_] = plan(fleet_config, "--from", FROM, "--to", TO, "-o", f"{tmp_path}/")
    edited = {**unit, "end": "2027-01-01T00:00:00+00:00"}
    result = run_cli("run-unit", json.dumps(edited), "--config", str(fleet_config))
    assert result.exit_code == 2 and "changed after planning" in result.stderr
    assert run_cli("run-unit", "{not json", "--config", str(fleet_config)).exit_code == 2


def test_running_a_unit_twice_gives_the_same_file(
    fleet_config: Path, fleet_server: SandboxServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    units = plan(fleet_config, "--from", FROM, "--to", TO, "-o", f"{out}/")
    acme_first_day = next(u for u in units if u["account"] == "acme")
    for _ in range(2):
        result = run_cli("run-unit", json.dumps(acme_first_day), "--config", str(fleet_config), "-q")
        assert result.exit_code == 0, result.stderr
    [path] = [p for p in out.rglob("*.parquet")]
    sid, _, app = account("acme")
    day = datetime.fromisoformat(str(acme_first_day["start"])).astimezone(SHANGHAI).date()
    expected = [r for r in fleet_server.emulator.rows(day, sid, app)]
    assert pq.read_table(path).num_rows == len(expected) > 0


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pull --all` runs each account in its own process, which cannot see the tests' in-memory keyring."""
    monkeypatch.setenv("CDRFETCH_YOULIANYUN_GLOBEX_AUTH_TOKEN", account("globex")[1])


@pytest.mark.usefixtures("secrets_in_env")
def test_pull_all_runs_every_account_and_combines_the_outcome(fleet_config: Path, tmp_path: Path) -> None:
    summary = tmp_path / "all.json"
    result = run_cli("pull", "--all", "--config", str(fleet_config), "--date", "2026-11-29", "-o", f"{tmp_path}/o/",
                     "--jobs", "2", "--summary-json", str(summary))  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    document = json.loads(summary.read_text())
    assert sorted(a["account"] for a in document["accounts"]) == ["acme", "globex"]
    assert all(a["exit_code"] == 0 and a["summary"]["records"]["calls"] > 0 for a in document["accounts"])


@pytest.mark.usefixtures("secrets_in_env")
def test_one_failing_account_does_not_stop_the_others(
    fleet_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDRFETCH_YOULIANYUN_ACME_AUTH_TOKEN", "0" * 32)  # acme's token is now wrong
    result = run_cli("pull", "--all", "--config", str(fleet_config), "--date", "2026-11-29", "-o", f"{tmp_path}/o/")
    assert result.exit_code == 3, result.stdout
    lines = {line.split()[2]: line.split()[0] for line in result.stdout.splitlines()}
    assert lines == {"default/acme": "FAIL", "default/globex": "ok"}
    assert "exit 77" in result.stdout


def test_the_combined_exit_code() -> None:
    assert combined_exit_code([0, 0]) == 0
    assert combined_exit_code([0, 69]) == 3
    assert combined_exit_code([69, 77]) == 77


def test_the_python_api_pulls_runs_and_fetches(fleet_config: Path, fleet_server: SandboxServer, tmp_path: Path) -> None:
    sid, token, app = account("globex")
    base = fleet_server.emulator.profile(fleet_server.url)["base_url"]
    settings = {"base_url": base, "account_sid": sid, "auth_token": token, "app_id": app}
    summary = cdrfetch.pull("youlianyun", date="2026-11-29", output=f"{tmp_path}/api/", settings=settings)
    day = datetime(2026, 11, 29, tzinfo=SHANGHAI)
    expected = collections.Counter(
        (r.client_id, r.callee, r.start_utc, r.duration) for r in fleet_server.emulator.rows(day.date(), sid, app)
    )
    assert summary["records"]["calls"] == sum(expected.values()) > 0
    batches = list(cdrfetch.fetch("youlianyun", date="2026-11-29", settings=settings))
    rows = [row for batch in batches for row in batch.to_pylist()]
    assert projection(rows) == expected
    [unit, *_] = cdrfetch.plan(start=FROM, end=TO, output=f"{tmp_path}/units/", config_file=str(fleet_config))
    assert cdrfetch.run(unit.to_dict(), config=str(fleet_config))["exit_code"] == 0
    with pytest.raises(CdrfetchError) as failure:
        cdrfetch.pull("youlianyun", date="2026-11-29", settings={**settings, "auth_token": "0" * 32})
    assert failure.value.exit_code == 77
    Window(day, day + timedelta(days=1), SHANGHAI)  # the API's window is the CLI's


def test_every_pull_option_of_the_cli_is_a_keyword_of_the_api(tmp_path: Path) -> None:
    """The CLI's pull is a layer over `cdrfetch.pull`: an option added to one and not the other fails here."""
    import inspect

    import typer.main

    from cdrfetch import api
    from cdrfetch.cli import app

    group = typer.main.get_command(app).get_command(None, "youlianyun")  # type: ignore[attr-defined]
    cli = {param.name for param in group.get_command(None, "pull").params} - {"quiet", "verbose", "log_format"}
    renamed = {"fmt": "format"}
    keywords = set(inspect.signature(api.pull).parameters) - {"provider", "log", "settings"}
    assert {renamed.get(name, name) for name in cli} == keywords
    summary = cdrfetch.pull("youlianyun", sandbox=True, dry_run=True, output=f"{tmp_path}/dry/", knobs=["empty=true"])
    assert summary["exit_code"] == 0 and not (tmp_path / "dry").exists()


def test_fetch_refuses_mistakes_when_called_not_when_first_iterated(fleet_config: Path) -> None:
    with pytest.raises(CdrfetchError, match="no table 'conferences'"):
        cdrfetch.fetch("youlianyun", table="conferences", config=str(fleet_config))
    with pytest.raises(CdrfetchError) as failure:
        cdrfetch.fetch("youlianyun", date="2026-13-40", config=str(fleet_config), account="globex")
    assert failure.value.exit_code == 2


def test_runs_starting_together_create_the_ledger_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cdrfetch.ledger import Ledger

    path = tmp_path / "ledger.sqlite3"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: Ledger(path).check(), range(8)))  # raised "table runs already exists" before
    assert Ledger(path).runs() == []


def test_a_fleet_never_writes_one_file_or_plans_since_last_without_a_stateful_destination(
    fleet_config: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "pull", "--all", "--config", str(fleet_config), "--date", "2026-11-29", "-o", f"{tmp_path}/a.parquet"
    )
    assert result.exit_code == 2 and "one file" in result.stderr
    result = run_cli("plan", "--config", str(fleet_config), "--since-last", "-o", f"{tmp_path}/out/")
    assert result.exit_code == 2 and "keeps the state" in result.stderr
    assert not list(tmp_path.glob("a.parquet*"))


def test_a_dry_run_reports_nothing_to_monitoring(profile: Path, tmp_path: Path) -> None:
    metrics = tmp_path / "cdrfetch.prom"
    result = run_cli("youlianyun", "pull", "--config", str(profile), "--dry-run", "--metrics-file", str(metrics))
    assert result.exit_code == 0, result.stderr
    assert not metrics.exists()
    result = run_cli("youlianyun", "pull", "--config", str(profile), "--dry-run", "--reset-state", "--yes")
    assert result.exit_code == 2
