"""Several accounts of one provider in one profile (`accounts:`), each with its own secrets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from cdrfetch.sandbox import emulator_class
from cdrfetch.sandbox.server import SandboxServer
from cdrfetch.testing.harness import MemoryKeyring, run_cli

DAY = "2026-11-30"


def account(name: str) -> tuple[str, str, str]:
    """A deterministic (sid, token, app id) for an account name."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return digest[:32], digest[32:64], hashlib.md5(name.encode()).hexdigest()


@pytest.fixture
def fleet_server() -> Iterator[SandboxServer]:
    names = ("acme", "globex")
    emulator = emulator_class("youlianyun")(
        accounts={account(n)[0]: account(n)[1] for n in names}, apps={account(n)[2]: account(n)[0] for n in names}
    )
    with SandboxServer(emulator) as running:
        yield running


@pytest.fixture
def fleet_config(
    fleet_server: SandboxServer, tmp_path: Path, memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """acme's token in its own env variable, globex's in the keyring under its own user."""
    base = fleet_server.emulator.profile(fleet_server.url)
    monkeypatch.setenv("CDRFETCH_YOULIANYUN_ACME_AUTH_TOKEN", account("acme")[1])
    memory_keyring.set_password("cdrfetch", "default/youlianyun/globex/auth_token", account("globex")[1])
    section = {
        "base_url": base["base_url"], "retries": 0,
        "accounts": {n: {"account_sid": account(n)[0], "app_id": account(n)[2]} for n in ("acme", "globex")},
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"profiles": {"default": {"youlianyun": section}}}))
    path.chmod(0o600)
    return path


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


def test_doctor_checks_every_account(fleet_config: Path) -> None:
    result = run_cli("doctor", "--config", str(fleet_config))
    logins = [line for line in result.stdout.splitlines() if "youlianyun login" in line]
    assert [line.split()[0] for line in logins] == ["OK", "OK"], result.stdout
    assert "acme:" in logins[0] and "globex:" in logins[1]
