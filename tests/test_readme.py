"""The README's two set-up commands stay true: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split("\n---\n", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", head, flags=re.S)


def test_readme_starts_with_exactly_two_commands() -> None:
    demo, tests = setup_commands()
    assert "pull --date day --sandbox" in demo
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == setup_commands()[1]


def test_every_pull_option_and_api_name_is_documented() -> None:
    import typer.main

    import cdrfetch
    from cdrfetch.cli import app

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    options_table = text.split("`pull` options", 1)[1].split("\n\n", 2)[1]
    group = typer.main.get_command(app).get_command(None, "youlianyun")  # type: ignore[attr-defined]
    names = {opt for param in group.get_command(None, "pull").params for opt in param.opts if opt.startswith("--")}
    missing = sorted(
        name for name in names - {"--help"} if f"`{name}" not in options_table and f" {name}" not in options_table
    )
    assert not missing, f"pull options missing from the README's table: {missing}"
    api_table = text.split("## Python API", 1)[1].split("```", 1)[0]
    assert not [name for name in cdrfetch.__all__ if f"`{name}" not in api_table and name != "CdrfetchError"]


def test_every_benchmark_is_listed_with_its_target() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `tests/bench/")]
    listed = {re.match(r"\| `(tests/bench/\w+\.py)", row).group(1) for row in rows}  # type: ignore[union-attr]
    present = {f"tests/bench/{path.name}" for path in (ROOT / "tests" / "bench").glob("*.py")}
    assert listed == present
    assert all(row.rstrip(" |").rsplit("|", 1)[1].strip() for row in rows)  # each names its target
