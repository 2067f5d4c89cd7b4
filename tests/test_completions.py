"""The shipped completion scripts are exactly what the app generates (regenerate when this fails)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPLETIONS = Path(__file__).resolve().parent.parent / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_fresh(shell: str) -> None:
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    command = [sys.executable, "-m", "cdrfetch", "--show-completion", shell]
    generated = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    shipped = (COMPLETIONS / f"cdrfetch.{shell}").read_text(encoding="utf-8")
    assert shipped == generated, (
        f"completions/cdrfetch.{shell} is stale: regenerate it with "
        f"`_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION=1 cdrfetch --show-completion {shell}"
        f" > completions/cdrfetch.{shell}`"
    )
