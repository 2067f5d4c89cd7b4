"""The sandbox: the HTTP(S) server the provider emulators run on, and how to start one.

Each provider's emulator lives beside it (`cdrfetch/providers/<module>/emulator/`, or a plugin's
own `emulator` module) and exports `EMULATOR = <Emulator subclass>`; see `Provider.emulator_class`.
What is shared here (server, synthetic data, TLS) is protocol-neutral.
"""

from __future__ import annotations

from typing import Any

from cdrfetch.sandbox.server import Emulator, SandboxServer


def emulator_class(provider: str) -> type[Emulator]:
    """The emulator class of `provider`."""
    from cdrfetch import providers

    return providers.load(provider).emulator_class()


def serve(provider: str, **knobs: Any) -> SandboxServer:
    """Start `provider`'s emulator on a free loopback port (caller stops it)."""
    emulator = emulator_class(provider)(**knobs)
    return SandboxServer(emulator).start()
