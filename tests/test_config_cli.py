"""Strict config files, `config` output, `config init`, `login` and the CLI's help and error style."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import keyring
import pytest
import yaml
from keyring.backends import null

from cdrfetch import __version__, config, doctor, providers
from cdrfetch.admin import starter_config
from cdrfetch.errors import ExitCode
from cdrfetch.testing.harness import MemoryKeyring, run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "cdrfetch.example.yaml"


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ({"profiles": {"default": {"laafic": {"api_key": "k"}}}}, "unknown provider 'laafic' (did you mean laaffic?)"),
        ({"profile": {"default": {}}}, "unknown top-level key 'profile' (did you mean profiles?)"),
        (
            {"profiles": {"default": {"laaffic": {"api_kye": "k"}}}},
            "unknown setting 'api_kye' for laaffic (did you mean",
        ),
    ],
)
def test_typos_are_refused_with_a_suggestion_before_missing_settings(
    tmp_path: Path, document: object, needle: str
) -> None:
    result = run_cli("laaffic", "pull", "--config", str(write(tmp_path, document)))
    assert result.exit_code == ExitCode.CONFIG
    assert needle in result.stderr and "is not set" not in result.stderr
    assert "example.yaml" not in result.stderr


def test_hints_point_at_config_init_not_at_a_repository_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("profiles: [1, 2]\n")
    result = run_cli("laaffic", "config", "--config", str(path))
    assert result.exit_code == ExitCode.CONFIG and "cdrfetch config init" in result.stderr


def test_config_json_without_a_file_writes_null() -> None:
    result = run_cli("youlianyun", "config", "--json", "--sandbox")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["config_file"] is None


def test_config_piped_is_plain_aligned_text_then_the_error_line() -> None:
    result = run_cli("youlianyun", "config", "--set", "base_url=https://a.example/" + "x" * 150)
    assert result.exit_code == ExitCode.CONFIG
    assert "│" not in result.stdout and "┃" not in result.stdout and "…" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["setting", "value", "source"]
    assert "x" * 150 in result.stdout
    columns = {line.index(line.split()[1]) for line in lines[1:] if len(line.split()) == 3 and "--set" not in line}
    assert len(columns) == 1
    assert "account_sid" in result.stderr and result.stderr.startswith("cdrfetch: error:")


@pytest.mark.parametrize("name", providers.names())
def test_starter_config_parses_has_no_secrets_and_shows_the_real_defaults(name: str) -> None:
    text = starter_config([name])
    block = yaml.safe_load(text)["profiles"]["default"][name]
    settings = {s.name: s for s in providers.load(name).all_settings()}
    assert set(block or {}) == {s.name for s in settings.values() if s.is_required and not s.secret}
    assert all(value is None for value in (block or {}).values())
    shown = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"\s+# (\w+): (\S.*?)  # .*", line):
            shown[match[1]] = yaml.safe_load(match[2])
    defaults = {n: s.default for n, s in settings.items() if s.default is not None and not s.secret}
    assert shown == defaults


def test_config_init_writes_a_private_file_that_loads_strictly(tmp_path: Path) -> None:
    result = run_cli("config", "init", "--provider", "laaffic")
    assert result.exit_code == 0, result.stderr
    path, _named = config.config_path(None)
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(config.read_profiles(path)["default"]) == ["laaffic"]
    pulled = run_cli("laaffic", "pull", "--date", "2024-01-01")
    assert pulled.exit_code == ExitCode.CONFIG and "api_key" in pulled.stderr  # loads; only the values are missing
    again = run_cli("config", "init")
    assert again.exit_code == ExitCode.USAGE and "--force" in again.stderr
    assert run_cli("config", "init", "--force").exit_code == 0
    assert set(config.read_profiles(path)["default"]) == set(providers.names())
    assert run_cli("config", "init", "--provider", "laafic", "--force").exit_code == ExitCode.USAGE


def test_example_config_comments_show_the_real_defaults() -> None:
    current, shown = None, {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if match := re.fullmatch(r"    ([\w-]+):", line):
            current = match[1]
        elif current and (match := re.fullmatch(r"      # (\w+): (.*?)(?:\s+#.*)?", line)):
            shown[(current, match[1])] = match[2]
    for (name, key), text in shown.items():
        setting = {s.name: s for s in providers.load(name).all_settings()}[key]
        if setting.default is not None and not setting.secret:
            assert yaml.safe_load(text) == setting.default, f"{name}.{key}: {text} != {setting.default!r}"


def test_login_refuses_a_backend_that_stores_nothing() -> None:
    keyring.set_keyring(null.Keyring())
    result = run_cli("laaffic", "login", input="s3cret\n")
    assert result.exit_code == ExitCode.CONFIG
    assert "nothing would be stored" in result.stderr and "CDRFETCH_" in result.stderr


def test_login_reads_back_and_delete_leaves_nothing(memory_keyring: MemoryKeyring) -> None:
    result = run_cli("laaffic", "login", input="s3cret\n")
    assert result.exit_code == 0, result.stderr
    user = config.keyring_user("default", "laaffic", "api_secret")
    assert keyring.get_password("cdrfetch", user) == "s3cret"
    assert run_cli("laaffic", "login", "--delete").exit_code == 0
    assert keyring.get_password("cdrfetch", user) is None


def test_login_warns_about_a_profile_the_config_does_not_have(tmp_path: Path) -> None:
    path = write(tmp_path, {"profiles": {"default": {}}})
    result = run_cli("laaffic", "login", "--profile", "prdo", "--config", str(path), input="s3cret\n")
    assert result.exit_code == 0
    assert "profile 'prdo' is not in" in result.stderr


def test_doctor_warns_about_a_plaintext_keyring() -> None:
    plain = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})
    keyring.set_keyring(plain())
    check = doctor.check_keyring()
    assert check.status == "warn" and "unencrypted" in check.detail


@pytest.mark.parametrize(("typo", "meant"), [("laafic", "laaffic"), ("huawei", "huawei-cec")])
def test_top_level_typos_get_did_you_mean(typo: str, meant: str) -> None:
    result = run_cli(typo)
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("cdrfetch: error:") and f"did you mean {meant}" in result.stderr


def test_click_usage_errors_have_the_same_style_as_ours() -> None:
    result = run_cli("youlianyun", "pull", "--bogus")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.splitlines()[0].startswith("cdrfetch: error: no such option: --bogus")
    assert result.stderr.splitlines()[1].startswith("  hint:")


def test_help_has_meaningful_metavars_choices_and_examples() -> None:
    text = run_cli("youlianyun", "pull", "--help").stdout
    assert "<str>" not in text and "<list[str]>" not in text and "[default: 0]" not in text
    assert "parquet|csv|jsonl|json" in text and "day|today|YYYY-MM-DD" in text and "text|json" in text
    assert "Examples:" in text and "cdrfetch youlianyun pull --date" in text
    serve = run_cli("sandbox", "serve", "--help").stdout
    assert "{" not in serve and "PROVIDER" in serve and "Examples:" in serve
    assert run_cli("--version").stdout.strip() == f"cdrfetch {__version__}"


def test_format_is_case_insensitive(tmp_path: Path) -> None:
    out = tmp_path / "day.out"
    result = run_cli("youlianyun", "pull", "--sandbox", "-q", "--format", "CSV", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_text().startswith('"provider"')
