"""Several accounts of one provider in one profile (`accounts:`), each with its own secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cdrfetch.testing.harness import MemoryKeyring, run_cli
from tests.sandbox_cli import account

DAY = "2026-11-30"


def test_each_account_pulls_its_own_records_with_its_own_secret(fleet_config: Path, tmp_path: Path) -> None:
    for name in ("acme", "globex"):
        out = tmp_path / name / f"{DAY}.parquet"
        result = run_cli("youlianyun", "pull", "--config", str(fleet_config), "--account", name,
                         "--date", DAY, "-o", str(out), "-q")  # fmt: skip
        assert result.exit_code == 0, result.stderr
        accounts = set(pq.read_table(out).column("account").to_pylist())
        assert accounts == {account(name)[0]}


def test_a_profile_with_several_accounts_needs_one_named(fleet_config: Path) -> None:
    result = run_cli("youlianyun", "pull", "--config", str(fleet_config), "--date", DAY, "-q")
    assert result.exit_code == 2
    assert "acme, globex" in result.stderr and "--account" in result.stderr
    result = run_cli("youlianyun", "pull", "--config", str(fleet_config), "--account", "acmee", "--date", DAY)
    assert result.exit_code == 78 and "did you mean acme" in result.stderr


def test_an_account_without_its_secret_is_refused(fleet_config: Path, memory_keyring: MemoryKeyring) -> None:
    memory_keyring.delete_password("cdrfetch", "default/youlianyun/globex/auth_token")
    result = run_cli("youlianyun", "pull", "--config", str(fleet_config), "--account", "globex", "--date", DAY)
    assert result.exit_code == 78 and "auth_token" in result.stderr


def test_login_stores_an_accounts_secret_under_its_own_user(fleet_config: Path, memory_keyring: MemoryKeyring) -> None:
    result = run_cli("youlianyun", "login", "--config", str(fleet_config), "--account", "acme", input="s3cret\n")
    assert result.exit_code == 0, result.stderr
    assert memory_keyring.get_password("cdrfetch", "default/youlianyun/acme/auth_token") == "s3cret"
    assert memory_keyring.get_password("cdrfetch", "default/youlianyun/auth_token") is None
    assert "warning" not in result.stderr


def test_login_warns_of_an_account_the_config_does_not_have(fleet_config: Path, memory_keyring: MemoryKeyring) -> None:
    result = run_cli("youlianyun", "login", "--config", str(fleet_config), "--account", "acmee", input="s3cret\n")
    assert result.exit_code == 0, result.stderr
    assert "has no account 'acmee' (did you mean acme?); storing the secret anyway" in result.stderr


def test_doctor_checks_every_account(fleet_config: Path) -> None:
    result = run_cli("doctor", "--config", str(fleet_config))
    logins = [line for line in result.stdout.splitlines() if "youlianyun login" in line]
    assert [line.split()[0] for line in logins] == ["OK", "OK"], result.stdout
    assert "acme:" in logins[0] and "globex:" in logins[1]


def test_a_numeric_account_name_is_selectable(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "profiles:\n  default:\n    youlianyun:\n      accounts:\n        10001: {account_sid: x, app_id: y}\n"
    )
    path.chmod(0o600)
    result = run_cli("youlianyun", "config", "--config", str(path), "--account", "10001", "--json")
    assert "account_sid" in result.stdout and "no account" not in result.stderr


def test_a_provider_wide_variable_never_overrides_an_accounts_own_value(
    fleet_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDRFETCH_YOULIANYUN_ACCOUNT_SID", "f" * 32)  # left over from a one-account setup
    result = run_cli("youlianyun", "config", "--config", str(fleet_config), "--account", "acme", "--json")
    [row] = [r for r in json.loads(result.stdout)["settings"] if r["setting"] == "account_sid"]
    assert row["value"] == account("acme")[0]
