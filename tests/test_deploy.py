"""deploy/: the Dockerfile, systemd units and Kubernetes CronJob parse, bake in no secret, and every
cdrfetch command line in them is accepted by the real CLI (run against the sandbox, into tmp_path)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from cdrfetch.testing.harness import run_cli

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def dockerfile_command() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", text, re.M)[1])  # type: ignore[index]
    return [*entry, *json.loads(re.search(r"^CMD (.*)$", text, re.M)[1])]  # type: ignore[index]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text(encoding="utf-8"))
    return parser


def cronjob() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "kubernetes" / "cronjob.yaml").read_text(encoding="utf-8"))


def container(document: dict) -> dict:  # type: ignore[type-arg]
    return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def command_lines() -> list[list[str]]:
    service = shlex.split(unit("cdrfetch-laaffic.service")["Service"]["ExecStart"])
    return [dockerfile_command(), service, ["cdrfetch", *container(cronjob())["args"]]]


def test_units_and_manifests_parse() -> None:
    service = unit("cdrfetch-laaffic.service")
    assert service["Service"]["Type"] == "oneshot" and "ExecStart" in service["Service"]
    timer = unit("cdrfetch-laaffic.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"
    document = cronjob()
    assert document["kind"] == "CronJob" and document["spec"]["schedule"]


def test_secrets_are_files_never_values() -> None:
    volumes = cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    secret = next(v["secret"] for v in volumes if "secret" in v)
    assert secret["defaultMode"] == 0o400
    env = {e["name"]: e for e in container(cronjob())["env"]}
    secrets = [name for name in env if name.endswith(("_SECRET", "_TOKEN", "_SK", "_PASSWORD"))]
    assert not secrets and all("value" in e for e in env.values())
    assert any(name.endswith("_FILE") for name in env)
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"^(ENV|ARG)\b.*(SECRET|TOKEN|PASSWORD|_SK)\b", dockerfile, re.M)
    service = (DEPLOY / "systemd" / "cdrfetch-laaffic.service").read_text(encoding="utf-8")
    assert "_SECRET_FILE=%d/" in service and "LoadCredential=" in service  # systemd credentials, mode 0400


@pytest.mark.parametrize("line", command_lines(), ids=["docker", "systemd", "kubernetes"])
def test_every_command_line_is_accepted_by_the_cli(line: list[str], tmp_path: Path) -> None:
    assert Path(line[0]).name == "cdrfetch"
    args = line[1:]
    replaced = {"-o": str(tmp_path / "cdrs") + "/", "--summary-json": str(tmp_path / "summary.json")}
    for index, arg in enumerate(args[:-1]):
        if arg in replaced:
            args[index + 1] = replaced[arg]
    result = run_cli(*args, "--sandbox")
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["exit_code"] == 0
    assert any((tmp_path / "cdrs").rglob("*.parquet"))
