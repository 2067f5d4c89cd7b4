"""The layout is the documentation: every provider has its package, tests, example config and README row,
and no emulator shares code with the provider it emulates."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cdrfetch import providers

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "cdrfetch" / "providers"


@pytest.mark.parametrize("name", providers.names())
def test_every_provider_has_its_test_module_and_readme_row(name: str) -> None:
    module = providers.module_name(name)
    assert (ROOT / "tests" / "providers" / f"test_{module}.py").is_file(), f"add tests/providers/test_{module}.py"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `cdrfetch {name}` |" in readme, f"add a row for {name} to the README's provider table"
    assert (PACKAGES / module / "provider.py").is_file() and (PACKAGES / module / "emulator").is_dir()
    assert providers.load(name).flow, f"declare {name}'s requests in `flow` (shown by pull --dry-run)"


@pytest.mark.parametrize("name", providers.names())
def test_an_emulator_never_imports_its_providers_code(name: str) -> None:
    package = f"cdrfetch.providers.{providers.module_name(name)}"
    for path in (PACKAGES / providers.module_name(name) / "emulator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = node.module
                own = imported.startswith(f"{package}.emulator") or not imported.startswith(package)
                assert own, f"{path.relative_to(ROOT)} imports {imported}: emulators use only shared helpers"


def test_no_module_in_the_package_is_longer_than_300_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {lines}"
        for path in (ROOT / "cdrfetch").rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 300
    ]
    assert not long, long
