"""Built-in emulators of every provider, for `--sandbox`, `sandbox serve` and the tests.

Each module `cdrfetch/sandbox/<provider module>.py` exports `EMULATOR = <Emulator subclass>`.
"""

from __future__ import annotations

import importlib
from typing import Any

from cdrfetch.providers import module_name
from cdrfetch.sandbox.server import Emulator, SandboxServer


def emulator_class(provider: str) -> type[Emulator]:
    """The emulator class of `provider`."""
    module = importlib.import_module(f"{__name__}.{module_name(provider)}")
    emulator: type[Emulator] = module.EMULATOR
    return emulator


def serve(provider: str, **knobs: Any) -> SandboxServer:
    """Start `provider`'s emulator on a free loopback port (caller stops it)."""
    emulator = emulator_class(provider)(**knobs)
    return SandboxServer(emulator).start()
