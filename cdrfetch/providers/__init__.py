"""The provider registry: the built-in packages here and the plugins of entry-point group `cdrfetch.providers`.

Both kinds are listed without importing them, so `cdrfetch --help` stays fast; a provider is imported
only when it is used. A built-in provider is the package `cdrfetch/providers/<module>/` whose
`provider` module exports `PROVIDER` (package `huawei_cec` -> provider `huawei-cec`). A plugin
distribution declares, in its packaging metadata:

    [project.entry-points."cdrfetch.providers"]
    acme = "cdrfetch_acme.provider:Acme"

Entry points are read straight from the installed distributions' `entry_points.txt` files (the
format of the packaging specification): `importlib.metadata` alone would cost a fifth of the
start-up time. A plugin that cannot be listed or loaded is reported in one line naming it; the other
providers work as before.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from cdrfetch.providers.base import Provider

GROUP = "cdrfetch.providers"
RESERVED = frozenset({"sandbox", "doctor", "runs", "config", "help"})  # top-level commands a plugin cannot shadow
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class Entry(NamedTuple):
    """One registered provider: its name, where its class lives and who installed it."""

    name: str
    ref: str  # "module:attribute"
    origin: str  # "cdrfetch" for built-ins, else the plugin's distribution


def names() -> list[str]:
    """Every provider name, sorted."""
    return sorted(entries())


def entry(name: str) -> Entry | None:
    """The registry entry of `name`, if there is one."""
    return entries().get(name)


@functools.cache
def entries() -> dict[str, Entry]:
    """Name -> entry: the built-ins, then every valid plugin that does not clash with one."""
    found = {entry.name: entry for entry in _builtin()}
    for plugin in _plugins():
        problem = _refusal(plugin, found)
        if problem:
            _warn(f"cdrfetch: warning: plugin {plugin.name!r} from {plugin.origin} ignored: {problem}")
        else:
            found[plugin.name] = plugin
    return found


def require(name: str) -> Entry:
    """The entry of `name`; a UsageError with the closest names when there is none."""
    from cdrfetch.errors import UsageError, suggest

    registered = entry(name)
    if registered is None:
        raise UsageError(f"unknown provider {name!r}{suggest(name, names())}", f"one of: {', '.join(names())}")
    return registered


def load(name: str) -> type[Provider]:
    """The provider class registered under `name` (ConfigError when a plugin fails to import)."""
    from cdrfetch.errors import ConfigError
    from cdrfetch.providers.base import Provider

    registered = require(name)
    try:
        module_name, _, attribute = registered.ref.partition(":")
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except Exception as exc:  # a plugin's own bug: name it, never take the others down
        raise ConfigError(
            f"provider {name!r} ({registered.origin}) failed to load: {type(exc).__name__}: {exc}",
            f"reinstall or uninstall {registered.origin}",
        ) from None
    if not (isinstance(found, type) and issubclass(found, Provider) and found.name == name):
        raise ConfigError(
            f"provider {name!r} ({registered.origin}): {registered.ref} is not a Provider named {name!r}",
            f"report it to the authors of {registered.origin}",
        )
    return found


def module_name(name: str) -> str:
    """`huawei-cec` -> `huawei_cec`: the module segment of a provider name."""
    return name.replace("-", "_")


def _builtin() -> list[Entry]:
    """Every package here with a `provider` module (listed, not imported)."""
    return [
        Entry(item.name.replace("_", "-"), f"{__name__}.{item.name}.provider:PROVIDER", "cdrfetch")
        for directory in __path__
        for item in os.scandir(directory)
        if item.is_dir() and os.path.isfile(os.path.join(item.path, "provider.py"))
    ]


def _warn(message: str) -> None:
    import logging  # only now: the registry is read on every start-up, warnings are rare

    logging.getLogger("cdrfetch").warning("%s", message)


def _refusal(plugin: Entry, found: dict[str, Entry]) -> str | None:
    if not _NAME.match(plugin.name):
        return "the name must be lower-case letters, digits and dashes"
    if plugin.name in RESERVED or plugin.name in found:
        return f"the name is taken by {found[plugin.name].origin if plugin.name in found else 'a cdrfetch command'}"
    if not _REF.match(plugin.ref):
        return f"{plugin.ref!r} is not a 'module:attribute' reference"
    return None


def _plugins() -> list[Entry]:
    """Entries of group GROUP in every distribution on sys.path (first distribution of a name wins)."""
    plugins, seen = [], set()
    for directory in sys.path:
        for dist, text in _entry_point_files(directory or "."):
            if dist.lower() in seen:
                continue
            seen.add(dist.lower())
            plugins += [Entry(name, ref, dist) for name, ref in _group(text)]
    return plugins


def _entry_point_files(directory: str) -> list[tuple[str, str]]:
    """(distribution name, entry_points.txt text) of the metadata directories in `directory`."""
    try:
        listing = sorted(os.scandir(directory), key=lambda item: item.name)
    except OSError:
        return []
    found = []
    for item in listing:
        if not item.name.endswith((".dist-info", ".egg-info")):
            continue
        try:
            with open(os.path.join(item.path, "entry_points.txt"), encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        if f"[{GROUP}]" in text:
            found.append((item.name.rsplit(".", 1)[0].split("-")[0], text))
    return found


def _group(text: str) -> list[tuple[str, str]]:
    """`name = module:attr` lines of section GROUP (packaging's entry_points.txt format)."""
    pairs, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line == f"[{GROUP}]"
        elif inside and "=" in line:
            name, _, ref = line.partition("=")
            pairs.append((name.strip(), ref.split("[")[0].strip()))  # extras `[x]` are not ours to resolve
    return pairs
