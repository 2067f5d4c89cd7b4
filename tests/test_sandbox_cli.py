"""Sandbox knobs from the command line: parsing, shared faults vs constructor knobs, listing, completion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdrfetch import providers, sandbox
from cdrfetch.errors import ExitCode, UsageError
from cdrfetch.sandbox.faults import DATA_FAULTS
from cdrfetch.testing.harness import run_cli


def test_values_are_json_when_they_parse_else_text() -> None:
    parsed = sandbox.parse_knobs(["empty=true", "records_max=3", "slow_pages=[1,2]", "busy_mode=409x", "name="])
    assert parsed == {"empty": True, "records_max": 3, "slow_pages": [1, 2], "busy_mode": "409x", "name": ""}
    with pytest.raises(UsageError):
        sandbox.parse_knobs(["no-equals-sign"])


@pytest.mark.parametrize("name", providers.names())
def test_every_listed_knob_is_accepted_with_its_default(name: str) -> None:
    table = sandbox.knob_table(name)
    shared = [row[0] for row in table if row[0] in DATA_FAULTS]
    assert shared == sandbox.emulator_class(name)().supported_faults()
    own = {knob: default for knob, default, _help in table if knob not in DATA_FAULTS}
    server = sandbox.serve(name, own)
    server.stop()


def test_shared_faults_go_through_fault_and_others_to_the_constructor() -> None:
    server = sandbox.serve("laaffic", {"empty": True, "records_max": 7})
    try:
        assert server.emulator.knobs.records_max == 0  # `empty` applied after construction
    finally:
        server.stop()
    server = sandbox.serve("laaffic", {"records_max": 7})
    try:
        assert server.emulator.knobs.records_max == 7
    finally:
        server.stop()


def test_unknown_knobs_exit_2_naming_the_known_ones() -> None:
    result = run_cli("sandbox", "serve", "laaffic", "--knob", "recods_max=3")
    assert result.exit_code == ExitCode.USAGE
    assert "recods_max" in result.stderr and "did you mean records_max" in result.stderr
    assert "known:" in result.stderr and "empty" in result.stderr
    result = run_cli("sandbox", "serve", "laaffic", "--knob", "truncate_downloads=1")  # not a Laaffic fault
    assert result.exit_code == ExitCode.USAGE


def test_list_knobs_prints_every_knob_with_default_and_help() -> None:
    result = run_cli("sandbox", "serve", "polycom", "--list-knobs")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert "clock_offset" not in names  # Polycom has no timestamps to skew
    assert {"malformed", "empty", "truncate_downloads", "phase_seconds", "cluster_tz"} <= set(names)
    assert any(line.split()[:2] == ["phase_seconds", "0.1"] for line in result.stdout.splitlines())
    assert "shared fault: serve no records at all" in result.stdout


def test_list_knobs_shows_the_hostile_data_faults_where_an_emulator_serves_them() -> None:
    polycom = run_cli("sandbox", "serve", "polycom", "--list-knobs")
    lines = {line.split()[0]: line for line in polycom.stdout.splitlines()}
    assert "hostile_archive" in lines and "hostile_json" in lines
    assert "bzip2_bomb" in lines["hostile_archive"] and "zip_slip" in lines["hostile_archive"]
    assert "lone_surrogate" in lines["hostile_json"] and "deep" in lines["hostile_json"]
    laaffic = run_cli("sandbox", "serve", "laaffic", "--list-knobs").stdout
    names = [line.split()[0] for line in laaffic.splitlines()]
    assert "hostile_json" in names and "hostile_archive" not in names  # JSON pages, no archive


def test_pull_sandbox_serves_a_hostile_archive() -> None:
    result = run_cli("polycom", "pull", "--sandbox", "--knob", "hostile_archive=zip_slip", "--date", "day", "-o", "-")
    assert result.exit_code == ExitCode.DATA, result.stderr
    assert "escapes the archive" in result.stderr and "Traceback" not in result.stderr
    unknown = run_cli("polycom", "pull", "--sandbox", "--knob", "hostile_archive=zip_bomb", "-o", "-")
    assert unknown.exit_code == ExitCode.USAGE and "expected one of" in unknown.stderr


def test_a_served_emulator_honours_its_knobs(tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "cdrfetch", "sandbox", "serve", "youlianyun", "--knob", "empty=true"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = []
        while not (line := server.stdout.readline()).startswith("# save as"):
            lines.append(line)
        path = tmp_path / "sandbox.yaml"
        path.write_text("".join(lines))
        path.chmod(0o600)
        out = tmp_path / "day.csv"
        result = run_cli("youlianyun", "pull", "--config", str(path), "--profile", "sandbox", "-o", str(out))
        assert result.exit_code == 0, result.stderr
        assert len(out.read_text().splitlines()) <= 1  # header only: the emulator serves no data
    finally:
        server.terminate()
        server.wait(10)


def complete(words: str, profile_file: Path | None = None) -> list[str]:
    env = {**os.environ, "_CDRFETCH_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split(" ")) - 1)
    if profile_file is not None:
        env["CDRFETCH_CONFIG"] = str(profile_file)
    command = [sys.executable, "-m", "cdrfetch"]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False).stdout.split()


def test_completion_completes_values(tmp_path: Path) -> None:
    assert complete("cdrfetch youlianyun pull --format ") == ["parquet", "csv", "jsonl", "json"]
    assert complete("cdrfetch youlianyun pull --date t") == ["today"]
    assert complete("cdrfetch sandbox serve ") == providers.names()
    path = tmp_path / "c.yaml"
    path.write_text("profiles: {default: {}, prod: {}, staging: {}}\n")
    path.chmod(0o600)
    assert complete("cdrfetch laaffic pull --profile ", path) == ["default", "prod", "staging"]


def test_pull_sandbox_takes_the_same_knobs() -> None:
    empty = run_cli("laaffic", "pull", "--sandbox", "--knob", "empty=true", "-o", "-", "--format", "jsonl")
    assert empty.exit_code == 0, empty.stderr
    assert empty.stdout == "" and "listening" in empty.stderr
    unknown = run_cli("laaffic", "pull", "--sandbox", "--knob", "nope=1", "-o", "-")
    assert unknown.exit_code == 2 and "no knob 'nope'" in unknown.stderr
    assert "listening" not in unknown.stderr  # the emulator line comes only once the run can go ahead
    without = run_cli("laaffic", "pull", "--knob", "empty=true", "-o", "-")
    assert without.exit_code == 2 and "--sandbox" in without.stderr


VOLUME_KNOBS = {
    "youlianyun": ["rows_min=400", "rows_max=400"],
    "laaffic": ["records_min=400", "records_max=400"],
    "huawei-cec": ["rows_min=400", "rows_max=400"],
    "polycom": ["calls_per_hour=40"],
}


@pytest.mark.parametrize("provider", sorted(VOLUME_KNOBS))
def test_every_emulator_serves_a_larger_volume_on_request(provider: str) -> None:
    """A user can try a real day's volume, not only the sandbox's few dozen calls."""
    knobs = [arg for knob in VOLUME_KNOBS[provider] for arg in ("--knob", knob)]
    result = run_cli(provider, "pull", "--sandbox", *knobs, "-o", "-", "--format", "jsonl", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) >= 350  # a few dozen without the knobs


@pytest.mark.parametrize(
    ("knob", "extra", "code", "text"),
    [("redirect_to=https://127.0.0.2:9/x", [], 78, "redirect"), ("fail_status=503", ["--set", "retries=0"], 69, "503"),
     ("trickle_seconds=0.2", ["--set", "deadline=1", "--set", "retries=0"], 69, "not complete within 1s"),
     ("endless=true", ["--set", "max_answer_mb=1"], 65, "larger than")],
)  # fmt: skip
def test_hostile_server_knobs_reach_every_answer(knob: str, extra: list[str], code: int, text: str) -> None:
    result = run_cli("huawei-cec", "pull", "--sandbox", "--knob", knob, *extra, "-o", "-", "--format", "jsonl")
    assert result.exit_code == code, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr
