"""Where each table of a pull lands under a directory or an object-storage prefix (the `layout` setting).

The layout is a relative path with placeholders, e.g. the default `{provider}/{account}/{label}.{ext}`
or Hive-style partitions `{provider}/{account}/date={date}/{label}.{ext}`. Every value is made a safe
path segment, so a provider's account name can never climb out of the directory.
"""

from __future__ import annotations

import re
import string

from cdrfetch.destinations.base import Where
from cdrfetch.errors import ConfigError

DEFAULT_LAYOUT = "{provider}/{account}/{label}.{ext}"
PLACEHOLDERS = ("provider", "account", "label", "ext", "date", "year", "month", "day")


def check(layout: str) -> str:
    """`layout` when it is usable: known placeholders only, ending in the file name with {ext}."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(layout) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"layout {layout!r}: {exc}", "write placeholders as {name}") from None
    unknown = [name for name in fields if name not in PLACEHOLDERS]
    if unknown:
        raise ConfigError(f"layout {layout!r}: unknown placeholder {{{unknown[0]}}}", f"use {', '.join(PLACEHOLDERS)}")
    if not {"account", "label"} <= set(fields):
        raise ConfigError(
            f"layout {layout!r} must contain {{account}} and {{label}}",
            "otherwise two accounts or two windows would write one file",
        )
    if not layout.endswith(".{ext}") or layout.startswith("/") or ".." in layout.split("/"):
        raise ConfigError(
            f"layout {layout!r} must be a relative path ending in .{{ext}}", f"for example {DEFAULT_LAYOUT}"
        )
    return layout


def path_of(layout: str, where: Where, ext: str) -> str:
    """The relative path of the calls file of one pull."""
    values = {
        "provider": where.provider,
        "account": where.account,
        "label": where.label,
        "ext": ext,
        "date": f"{where.start:%Y-%m-%d}",
        "year": f"{where.start:%Y}",
        "month": f"{where.start:%m}",
        "day": f"{where.start:%d}",
    }
    return check(layout).format(**{name: safe(value) for name, value in values.items()})


def beside(calls: str, table: str) -> str:
    """A side table's file next to the calls file: `x.parquet` -> `x.recordings.parquet`."""
    head, dot, ext = calls.rpartition(".")
    return f"{head}.{table}.{ext}" if dot else f"{calls}.{table}"


def safe(text: str) -> str:
    """A path segment that cannot escape its directory."""
    return re.sub(r"[^A-Za-z0-9._@=-]+", "_", text).strip(".") or "_"
