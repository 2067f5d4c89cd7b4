"""Exit codes and messages of the CLI itself (one line + hint, never a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdrfetch import __version__, providers
from cdrfetch.errors import ExitCode
from cdrfetch.testing.harness import run_cli


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.strip() == f"cdrfetch {__version__}"
    help_text = run_cli("--help").stdout
    for name in [*providers.names(), "sandbox", "doctor", "runs"]:
        assert name in help_text


@pytest.mark.parametrize("name", providers.names())
def test_every_provider_group_has_the_same_commands(name: str) -> None:
    text = run_cli(name, "--help").stdout
    for command in ("pull", "login", "config", "check", "runs"):
        assert command in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--date", "last-week"], "--date"),
        (["--from", "2024-01-01"], "--from and --to go together"),
        (["--from", "2024-01-02", "--to", "2024-01-01"], "--to must be later"),
        (["--date", "2024-01-01", "--from", "2024-01-01", "--to", "2024-01-02"], "cannot be combined"),
        (["--format", "xlsx"], "unknown format"),
        (["-o", "-", "--format", "parquet"], "stdout"),
        (["--set", "auth_token=abc"], "never accepted"),
        (["--set", "nope=1"], "unknown setting"),
        (["--since-last", "--date", "day"], "--since-last cannot be combined"),
        (["--log-format", "xml"], "--log-format"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_a_hint(sandbox_args: list[str], args: list[str], needle: str) -> None:
    result = run_cli("youlianyun", "pull", *sandbox_args, *args)
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert needle in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["--date", "last-week"], ["--from", "2024-01-02", "--to", "2024-01-01"], ["-o", "-", "--format", "parquet"]],
)
def test_usage_errors_come_before_settings_and_are_not_recorded_as_runs(args: list[str]) -> None:
    result = run_cli("youlianyun", "pull", *args)  # no profile at all: settings would fail with 78
    assert result.exit_code == ExitCode.USAGE, result.stderr
    assert run_cli("runs", "--json").stdout.strip() == "[]"


@pytest.fixture
def sandbox_args(tmp_path: Path) -> list[str]:
    return ["--sandbox", "-o", str(tmp_path / "out.parquet")]


def test_missing_settings_exit_78_naming_how_to_supply_them(tmp_path: Path) -> None:
    result = run_cli("youlianyun", "pull", "--date", "2024-03-05")
    assert result.exit_code == ExitCode.CONFIG
    assert "account_sid" in result.stderr and "CDRFETCH_YOULIANYUN_ACCOUNT_SID" in result.stderr


def test_unknown_profile_and_missing_config_file_exit_78(tmp_path: Path) -> None:
    assert run_cli("youlianyun", "pull", "--config", str(tmp_path / "none.yaml")).exit_code == ExitCode.CONFIG
    (tmp_path / "c.yaml").write_text("profiles: {default: {}}\n")
    result = run_cli("youlianyun", "pull", "--config", str(tmp_path / "c.yaml"), "--profile", "prod")
    assert result.exit_code == ExitCode.CONFIG and "known profiles: default" in result.stderr


def test_config_shows_sources_and_masks_secrets() -> None:
    result = run_cli("youlianyun", "config", "--sandbox")
    assert result.exit_code == 0
    assert "sandbox" in result.stdout and "********" in result.stdout
    assert "0123456789abcdef0123456789abcdef" not in result.stdout


def test_config_flags_missing_required_settings() -> None:
    result = run_cli("youlianyun", "config", "--json")
    assert result.exit_code == ExitCode.CONFIG
    assert '"MISSING"' in result.stdout


def test_sandbox_serve_rejects_unknown_providers() -> None:
    result = run_cli("sandbox", "serve", "nope")
    assert result.exit_code == ExitCode.USAGE and "unknown provider" in result.stderr


def test_sandbox_serve_prints_a_working_profile(tmp_path: Path) -> None:
    import subprocess
    import sys

    server = subprocess.Popen(
        [sys.executable, "-m", "cdrfetch", "sandbox", "serve", "youlianyun"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        lines = []
        while not (line := server.stdout.readline()).startswith("# save as"):
            lines.append(line)
        config = tmp_path / "sandbox.yaml"
        config.write_text("".join(lines))
        config.chmod(0o600)
        out = tmp_path / "day.csv"
        result = run_cli("youlianyun", "pull", "--config", str(config), "--profile", "sandbox", "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert len(out.read_text().splitlines()) > 1
    finally:
        server.terminate()
        server.wait(10)


def test_a_reader_closing_stdout_ends_the_run_with_141_and_no_traceback() -> None:
    import json
    import subprocess
    import sys

    command = [sys.executable, "-m", "cdrfetch", "youlianyun", "pull", "--sandbox", "-q"]
    command += ["--from", "2024-01-01", "--to", "2024-02-01", "-o", "-"]  # far more than a pipe buffer
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stdout is not None and run.stderr is not None
    assert run.stdout.readline().startswith('"provider"')  # `| head -1`
    run.stdout.close()
    assert run.wait(60) == 141
    (line,) = run.stderr.read().splitlines()
    assert line == "cdrfetch: output pipe closed by the reader; the run was not recorded as complete"
    (recorded,) = json.loads(run_cli("runs", "--json").stdout)
    assert recorded["exit_code"] == 141 and recorded["records"] == {}
