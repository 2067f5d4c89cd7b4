"""Named destinations: the `destinations:` section of the config file, chosen with `-o NAME`.

    destinations:
      lake: {url: "s3://cdr-lake/raw/", layout: "{provider}/{account}/date={date}/{label}.{ext}"}
      calls_table: {url: "s3://cdr-lake/tables/", format: delta}
      billing_db: {url: "postgresql://cdr@db.example.com/billing?sslmode=verify-full"}

A destination's password is a secret like any other: env CDRFETCH_DESTINATION_<NAME>_PASSWORD, or its
_FILE variant, or the keyring (service cdrfetch, user destinations/<name>/password), never the URL.
Cron lines stay short and no secret is ever in a crontab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdrfetch import config
from cdrfetch.errors import ConfigError, UsageError, suggest
from cdrfetch.permissions import read_secret_file

KEYS = ("url", "format", "layout", "storage_options", "upsert", "schema", "part_size_mb")


@dataclass(frozen=True)
class Named:
    """One configured destination."""

    name: str
    url: str
    format: str | None = None
    layout: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)  # as written: fsspec takes any types
    upsert: bool = False
    schema: str | None = None
    part_size_mb: int | None = None  # multipart part size of object uploads

    @property
    def variable(self) -> str:
        return f"CDRFETCH_DESTINATION_{self.name}_PASSWORD".upper().replace("-", "_")

    def password(self) -> str | None:
        """The destination's password, when it has one (env, _FILE, then the keyring)."""
        if os.environ.get(self.variable):
            return os.environ[self.variable]
        if os.environ.get(self.variable + "_FILE"):
            return read_secret_file(os.environ[self.variable + "_FILE"], self.variable + "_FILE", "password")
        from cdrfetch import keystore

        try:
            return keystore.get(f"destinations/{self.name}/password")
        except keystore.KeyringError:
            return None  # no usable keyring here: libpq's PGPASSWORD or ~/.pgpass may still supply it


def all_named(config_file: str | None) -> dict[str, Named]:
    """Every destination of the config file (none when there is no file)."""
    path, _ = config.config_path(config_file)
    if not path.exists():
        return {}
    section = config.read_document(path).get("destinations") or {}
    return {str(name): _parse(path, str(name), spec) for name, spec in section.items()}


def find(name: str | None, config_file: str | None) -> Named | None:
    """The destination `-o NAME` names; None for a path or URL.

    A bare name that is no destination is a directory, unless it looks like a misspelt destination
    and no such directory exists: then it is refused rather than silently written as a directory.
    """
    if name is None or any(mark in name for mark in ("/", "\\", "://", ".")) or name == "-":
        return None
    known = all_named(config_file)
    if name in known:
        return known[name]
    close = suggest(name, known)
    if close and not Path(name).exists():
        raise UsageError(f"-o {name}: no destination {name!r} in the config{close}", "end a directory name with '/'")
    return None


def _parse(path: Path, name: str, spec: Any) -> Named:
    if isinstance(spec, str):
        spec = {"url": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise ConfigError(f"{path}: destination {name!r} needs a `url:`", "e.g. url: s3://bucket/prefix/")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} in destination {name!r}{suggest(unknown[0], KEYS)}",
            f"known: {', '.join(KEYS)}",
        )
    options = spec.get("storage_options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{path}: storage_options of {name!r} must be a mapping", "e.g. {region: eu-west-1}")
    return Named(
        name,
        spec["url"],
        format=spec.get("format"),
        layout=spec.get("layout"),
        storage_options=_secret_aware(path, name, options),
        upsert=bool(spec.get("upsert", False)),
        schema=spec.get("schema"),
        part_size_mb=_part_size(path, name, spec.get("part_size_mb")),
    )


SECRET_MARKS = ("secret", "token", "password", "key", "sas", "credential")


def _secret_aware(path: Path, name: str, options: dict[Any, Any]) -> dict[str, Any]:
    """The options; a secret among them is masked in every message, and its file must be private."""
    from cdrfetch.permissions import refuse_readable_secret
    from cdrfetch.redact import REDACTOR

    for key, value in options.items():
        if any(mark in str(key).lower() for mark in SECRET_MARKS) and not isinstance(value, (bool, int)):
            refuse_readable_secret(path, f"destinations.{name}.storage_options.{key}")
            REDACTOR.add(str(value))
    return {str(k): v for k, v in options.items()}


def _part_size(path: Path, name: str, value: Any) -> int | None:
    """S3 parts are 5 MiB to 5 GiB (the last one may be smaller)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 5 <= value <= 5120:
        raise ConfigError(f"{path}: part_size_mb of {name!r} must be a whole number from 5 to 5120", "e.g. 64")
    return value
