"""The orchestration examples (examples/airflow, kubernetes, dagster) are real: the Python files compile,
the manifests parse, and the commands and API calls they use exist and work the way they assume.

Airflow and Dagster are not installed in the test environment (each pulls in hundreds of MB of
dependencies), so their files are compiled, not imported; the cdrfetch side of each is exercised here.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import yaml

from cdrfetch.testing.harness import run_cli

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_every_orchestration_example_compiles_and_has_a_readme() -> None:
    files = sorted(EXAMPLES.glob("*/*.py"))
    assert {path.parent.name for path in files} >= {"airflow", "dagster"}
    for path in files:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    for folder in ("airflow", "kubernetes", "dagster"):
        assert (EXAMPLES / folder / "README.md").is_file()


def test_the_dags_and_assets_use_only_the_public_api() -> None:
    import cdrfetch

    for path in (EXAMPLES / "airflow" / "cdrfetch_dag.py", EXAMPLES / "dagster" / "cdrfetch_assets.py"):
        used = {
            node.attr
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cdrfetch"
        }
        assert used and used <= set(cdrfetch.__all__), (path, used)


def test_the_dagster_month_windows() -> None:
    """The helper is executed on its own: the rest of the file needs Dagster."""
    source = (EXAMPLES / "dagster" / "cdrfetch_assets.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    [function] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "month_window"]
    namespace: dict[str, object] = {}
    exec(compile(ast.Module([ast.parse("from datetime import date").body[0], function], []), "w", "exec"), namespace)
    month_window = namespace["month_window"]
    assert month_window("2026-03-01") == ("2026-03-01", "2026-04-01")  # type: ignore[operator]
    assert month_window("2026-12-01") == ("2026-12-01", "2027-01-01")  # type: ignore[operator]


def test_the_indexed_job_manifest_parses_and_its_commands_exist() -> None:
    [job] = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "backfill-job.yaml").read_text(encoding="utf-8")))
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 4
    container = spec["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["SHARDS"] == str(spec["completions"])
    script = container["args"][0]
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line.split(">")[0].split("||")[0]) if "cdrfetch" in line else []
        if words and words[0] == "cdrfetch":
            command = [word for word in words[1:] if not word.startswith("-") and "$" not in word][:1]
            assert run_cli(*command, "--help").exit_code == 0, command
            options = [word.split("=")[0] for word in words if word.startswith("--")]
            help_text = run_cli(*command, "--help").stdout
            assert all(option in help_text for option in options), (command, options)
