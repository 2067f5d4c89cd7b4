"""`cdrfetch --help` stays light: the heavy libraries are imported only by commands that use them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("requests", "yaml", "keyring", "pyarrow", "urllib3")
PROBE = """
import sys
from cdrfetch.cli import main
try:
    main({args!r})
except SystemExit:
    pass
print("LOADED", *sorted(m for m in {heavy!r} if m in sys.modules))
"""


def loaded_after(*args: str) -> list[str]:
    code = PROBE.format(args=list(args), heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.rsplit("LOADED", 1)[1].split()


def test_help_imports_no_heavy_library() -> None:
    assert loaded_after("--help") == []


def test_provider_group_help_is_light_too() -> None:
    assert loaded_after("sandbox", "--help") == []
