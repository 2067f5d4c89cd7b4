"""Third-party providers: the example plugin installed by pip works like a built-in; broken plugins stay contained."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cdrfetch-acme"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example plugin installed by pip (a real wheel build, entry points and all) into its own directory."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("source") / "cdrfetch-acme"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*command, str(target), str(source)], check=True, capture_output=True, timeout=300)
    yield target


def cli(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    env = {k: v for k, v in env.items() if not k.startswith("CDRFETCH_")}
    command = [sys.executable, "-m", "cdrfetch", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


def fake_distribution(site: Path, name: str, entry_points: str) -> None:
    """A distribution's metadata as pip leaves it, with `entry_points` as its entry_points.txt."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def test_an_installed_plugin_is_a_command_like_a_builtin(site: Path, tmp_path: Path) -> None:
    listed = cli(site, "--help")
    assert listed.returncode == 0 and "acme " in listed.stdout, listed.stderr
    pulled = cli(site, "acme", "pull", "--sandbox", "--date", "day", "-o", "-", "--format", "jsonl", cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.count('"provider":"acme"') > 0
    checked = cli(site, "acme", "check", "--sandbox", cwd=tmp_path)
    assert checked.returncode == 0 and "signature accepted" in checked.stdout + checked.stderr, checked.stderr
    config = cli(site, "acme", "config", "--sandbox", cwd=tmp_path)
    assert config.returncode == 0 and "CDRFETCH_ACME_API_SECRET" not in config.stderr
    assert "api_secret" in config.stdout and "acme-sandbox-secret" not in config.stdout


def test_the_plugin_passes_the_public_contract_suite(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=EXAMPLE)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_plugin_that_fails_to_import_names_itself_and_spares_the_rest(tmp_path: Path) -> None:
    fake_distribution(tmp_path, "cdrfetch_broken", "[cdrfetch.providers]\nbroken = cdrfetch_no_such_module:Provider\n")
    listed = cli(tmp_path, "--help")
    assert listed.returncode == 0 and "broken" in listed.stdout and "laaffic" in listed.stdout
    used = cli(tmp_path, "broken", "pull", "--date", "day", cwd=tmp_path)
    assert used.returncode == 78, used.stderr
    [line, hint] = used.stderr.strip().splitlines()
    assert "provider 'broken' (cdrfetch_broken) failed to load" in line and "Traceback" not in used.stderr
    assert "cdrfetch_broken" in hint
    assert cli(tmp_path, "laaffic", "pull", "--sandbox", "-o", "-", "-q", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("laaffic = evil:Provider", "the name is taken by cdrfetch"),
        ("doctor = evil:Provider", "the name is taken by a cdrfetch command"),
        ("Bad_Name = evil:Provider", "lower-case letters"),
        ("fine = not a reference", "is not a 'module:attribute' reference"),
    ],
)
def test_a_plugin_that_cannot_be_listed_is_ignored_with_one_warning(tmp_path: Path, entry: str, reason: str) -> None:
    fake_distribution(tmp_path, "cdrfetch_clash", f"[cdrfetch.providers]\n{entry}\n")
    listed = cli(tmp_path, "--help")
    assert listed.returncode == 0
    [warning] = listed.stderr.strip().splitlines()
    assert "plugin" in warning and "cdrfetch_clash" in warning and reason in warning
    assert "laaffic" in listed.stdout
