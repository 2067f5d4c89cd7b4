"""cdrfetch: pull call detail records from telecom and CPaaS providers.

The Python API (`plan`, `run`, `pull`, `fetch`, `shard`, `Unit`; see `cdrfetch.api`) and the error
classes (`CdrfetchError` and its subclasses, each with an `exit_code`) are imported on first use, so
`import cdrfetch` and `cdrfetch --help` stay light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["CdrfetchError", "Unit", "fetch", "plan", "pull", "run", "shard"]
_API = ("Unit", "fetch", "plan", "pull", "run", "shard")


def __getattr__(name: str) -> Any:
    if name in _API:
        from cdrfetch import api

        return getattr(api, name)
    if name == "CdrfetchError":
        from cdrfetch.errors import CdrfetchError

        return CdrfetchError
    raise AttributeError(f"module 'cdrfetch' has no attribute {name!r}")
