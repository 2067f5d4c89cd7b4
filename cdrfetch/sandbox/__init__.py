"""The sandbox: the HTTP(S) server the provider emulators run on, and how to start one.

Each provider's emulator lives beside it (`cdrfetch/providers/<module>/emulator/`, or a plugin's
own `emulator` module) and exports `EMULATOR = <Emulator subclass>`; see `Provider.emulator_class`.
What is shared here (server, synthetic data, TLS) is protocol-neutral.

Knobs (`--knob name=value` on the command line) are of two kinds: the shared data faults
(`faults.DATA_FAULTS`, set with `Emulator.fault`) and each emulator's own constructor keywords
(`Emulator.knob_defaults`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from cdrfetch.errors import UsageError
from cdrfetch.sandbox.faults import DATA_FAULTS, HOSTILE_KNOBS, knob_value
from cdrfetch.sandbox.server import Emulator, SandboxServer


def emulator_class(provider: str) -> type[Emulator]:
    """The emulator class of `provider`."""
    from cdrfetch import providers

    return providers.load(provider).emulator_class()


def parse_knobs(pairs: Iterable[str]) -> dict[str, Any]:
    """`name=value` pairs -> {name: value}; a value is JSON when it parses as JSON, else the text itself."""
    knobs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--knob {pair!r}: expected NAME=VALUE", "e.g. --knob empty=true (see --list-knobs)")
        try:
            knobs[name.strip()] = json.loads(text)
        except ValueError:
            knobs[name.strip()] = text
    return knobs


def knob_table(provider: str) -> list[tuple[str, Any, str]]:
    """Every knob of `provider`'s emulator: (name, default, help), the shared faults first."""
    cls = emulator_class(provider)
    shared = cls.supported_faults()
    rows: list[tuple[str, Any, str]] = [(n, DATA_FAULTS[n][0](), f"shared fault: {DATA_FAULTS[n][1]}") for n in shared]
    rows += [(n, HOSTILE_KNOBS[n][0](), f"hostile server: {HOSTILE_KNOBS[n][1]}") for n in HOSTILE_KNOBS]
    for name, default in cls.knob_defaults().items():
        if name not in DATA_FAULTS:
            kind = type(default).__name__ if default is not None else "optional"
            rows.append((name, default, f"{provider} knob ({kind})"))
    return rows


def serve(provider: str, knobs: Mapping[str, Any] | None = None, *, port: int = 0, **more: Any) -> SandboxServer:
    """Start `provider`'s emulator on a loopback port (caller stops it); shared faults go through `fault()`.

    An unknown knob is a UsageError naming the known ones."""
    cls = emulator_class(provider)
    wanted = {**(knobs or {}), **more}
    known = [name for name, _default, _help in knob_table(provider)]
    unknown = [name for name in wanted if name not in known and name != "clock"]
    if unknown:
        from cdrfetch.errors import suggest

        raise UsageError(
            f"{provider} emulator has no knob {unknown[0]!r}{suggest(unknown[0], known)}", f"known: {', '.join(known)}"
        )
    faults = {name: value for name, value in wanted.items() if name in DATA_FAULTS}
    hostile = {name: value for name, value in wanted.items() if name in HOSTILE_KNOBS}
    own = {name: value for name, value in wanted.items() if name not in DATA_FAULTS and name not in HOSTILE_KNOBS}
    try:
        emulator = cls(**own)
        for name, value in faults.items():
            emulator.fault(name, value)
        for name, value in hostile.items():
            emulator.faults.hostile(name, knob_value(name, HOSTILE_KNOBS[name][0], value))
    except (TypeError, ValueError) as exc:  # a knob value of the wrong kind
        raise UsageError(f"{provider} emulator: {exc}", "see --list-knobs for each knob's default") from None
    return SandboxServer(emulator, port=port).start()
