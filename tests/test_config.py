from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cdrfetch import keystore
from cdrfetch.config import keyring_user, parse_overrides, resolve
from cdrfetch.errors import ConfigError, UsageError
from cdrfetch.providers.base import COMMON_SETTINGS, Setting
from cdrfetch.testing.harness import MemoryKeyring

SETTINGS = (
    Setting("base_url", "API root", default="https://api.example"),
    Setting("account", "account id"),
    Setting("token", "API token", secret=True),
    Setting("concurrency", "parallel requests", default=4, kind=int),
    Setting("mode", "a choice", default="a", choices=("a", "b")),
    *COMMON_SETTINGS,
)


def write_config(tmp_path: Path, section: dict[str, object], mode: int = 0o600, profile: str = "default") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"profiles": {profile: {"demo": section}}}), encoding="utf-8")
    path.chmod(mode)
    return path


# Each case: which sources hold a value for `account` -> the source that must win.
PRECEDENCE = [
    ({"set", "env", "file_env", "profile"}, "--set"),
    ({"env", "file_env", "profile"}, "env CDRFETCH_DEMO_ACCOUNT"),
    ({"file_env", "profile"}, "env CDRFETCH_DEMO_ACCOUNT_FILE"),
    ({"profile"}, "profile default"),
]


@pytest.mark.parametrize(("sources", "winner"), PRECEDENCE)
def test_precedence_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: set[str], winner: str) -> None:
    path = write_config(tmp_path, {"account": "from-profile"} if "profile" in sources else {})
    if "env" in sources:
        monkeypatch.setenv("CDRFETCH_DEMO_ACCOUNT", "from-env")
    if "file_env" in sources:
        (tmp_path / "acct").write_text("from-file\n")
        monkeypatch.setenv("CDRFETCH_DEMO_ACCOUNT_FILE", str(tmp_path / "acct"))
    overrides = {"account": "from-set"} if "set" in sources else {}
    resolved = resolve("demo", SETTINGS, config=str(path), overrides=overrides, keyring_lookup=False)
    assert resolved.source("account").startswith(winner)
    expected = {"--set": "from-set", "env CDRFETCH_DEMO_ACCOUNT": "from-env"}.get(winner)
    expected = expected or ("from-file" if "FILE" in winner else "from-profile")
    assert resolved["account"] == expected


def test_secret_from_keyring_env_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: MemoryKeyring
) -> None:
    path = write_config(tmp_path, {"account": "a"})
    keystore.put(keyring_user("default", "demo", "token"), "kr-secret")
    resolved = resolve("demo", SETTINGS, config=str(path))
    assert (resolved["token"], resolved.source("token")) == ("kr-secret", "keyring")
    assert resolved.secret_values() == ["kr-secret"]
    monkeypatch.setenv("CDRFETCH_DEMO_TOKEN", "env-secret")
    assert resolve("demo", SETTINGS, config=str(path))["token"] == "env-secret"


def test_defaults_types_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {})
    monkeypatch.setenv("CDRFETCH_DEMO_CONCURRENCY", "8")
    monkeypatch.setenv("CDRFETCH_DEMO_INSECURE", "yes")
    resolved = resolve("demo", SETTINGS, config=str(path), keyring_lookup=False)
    assert resolved["concurrency"] == 8 and resolved["insecure"] is True
    assert resolved.source("base_url") == "default"
    assert [s.name for s in resolved.missing] == ["account", "token"]
    with pytest.raises(ConfigError) as caught:
        resolved.require_complete()
    assert "CDRFETCH_DEMO_ACCOUNT" in str(caught.value.hint)


def test_plaintext_secret_in_readable_file_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"account": "a", "token": "s3cr3t-v4lue"}, mode=0o644)
    with pytest.raises(ConfigError) as caught:
        resolve("demo", SETTINGS, config=str(path))
    assert "chmod 600" in str(caught.value.hint)
    assert "s3cr3t-v4lue" not in str(caught.value)
    path.chmod(0o600)
    assert resolve("demo", SETTINGS, config=str(path))["token"] == "s3cr3t-v4lue"


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"acount": "typo"}, "unknown setting 'acount'"),
        ({"concurrency": "many"}, "not a valid int"),
        ({"mode": "z"}, "not one of"),
    ],
)
def test_invalid_profiles_are_config_errors(tmp_path: Path, section: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        resolve("demo", SETTINGS, config=str(write_config(tmp_path, section)), keyring_lookup=False)


def test_profile_and_file_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, {"account": "prod-acct"}, profile="prod")
    monkeypatch.setenv("CDRFETCH_CONFIG", str(path))
    monkeypatch.setenv("CDRFETCH_PROFILE", "prod")
    assert resolve("demo", SETTINGS, keyring_lookup=False)["account"] == "prod-acct"
    with pytest.raises(ConfigError, match="profile 'staging' not found"):
        resolve("demo", SETTINGS, profile="staging", keyring_lookup=False)
    with pytest.raises(ConfigError, match="not found"):
        resolve("demo", SETTINGS, config=str(tmp_path / "missing.yaml"), keyring_lookup=False)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("profiles:\n  default:\n    demo: [unclosed\n")
    with pytest.raises(ConfigError, match="line"):
        resolve("demo", SETTINGS, config=str(path), keyring_lookup=False)


def test_secrets_are_never_accepted_by_set() -> None:
    assert parse_overrides(["account=x"], SETTINGS) == {"account": "x"}
    with pytest.raises(UsageError, match="never accepted"):
        parse_overrides(["token=abc"], SETTINGS)
    with pytest.raises(UsageError, match="unknown setting"):
        parse_overrides(["nope=1"], SETTINGS)
