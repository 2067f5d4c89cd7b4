"""Destinations a pull writes to, and how `-o` / `--to` chooses one.

- files: a local directory or file (default ./cdrs/), or stdout (`-o -`);
- objects: `s3://`, `gs://`, `az://` URLs (fsspec; `pip install 'cdrfetch[s3]'`, gcsfs, adlfs);
- Delta Lake tables: `--format delta` with a directory or object URL (`pip install 'cdrfetch[delta]'`);
- PostgreSQL tables: a `postgresql://` URL (`pip install 'cdrfetch[postgres]'`);
- a named destination from the config file's `destinations:` section (`-o NAME`).

The optional libraries are imported only when their destination is used.
"""

from __future__ import annotations

import importlib
from urllib.parse import parse_qs, urlsplit

from cdrfetch.destinations.base import Chunk, Destination, Load, Where, needs
from cdrfetch.destinations.layout import DEFAULT_LAYOUT
from cdrfetch.destinations.named import Named
from cdrfetch.errors import UsageError

__all__ = ["Chunk", "Destination", "Load", "Named", "Where", "choose"]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# kind -> (module, class, library it needs, the extra that installs it); each class has `from_named(Named)`
TABLE_KINDS = {
    "delta": ("cdrfetch.destinations.delta", "DeltaTables", "deltalake", "delta"),
    "postgres": ("cdrfetch.destinations.postgres", "Postgres", "psycopg", "postgres"),
}


def choose(
    output: str | None,
    fmt: str | None,
    *,
    config_file: str | None = None,
    file_layout: str | None = None,
) -> Destination:
    """The destination `-o OUTPUT` names (a path, a URL or a destination name), writing `fmt` (None: from the name)."""
    from cdrfetch.destinations import named

    spec = named.find(output, config_file) or Named("", output or "")
    fmt = (fmt or spec.format or "").lower() or None
    url = spec.url or None
    if url is not None and url.startswith(POSTGRES_SCHEMES):
        _refuse_password_in(url)
        return table_destination("postgres", spec)
    if fmt == "delta":
        if url in (None, "-"):
            raise UsageError("--format delta needs -o DIR or -o s3://bucket/prefix/", "a table cannot go to stdout")
        return table_destination("delta", spec)
    from cdrfetch.destinations.files import Files
    from cdrfetch.sinks import format_for

    file_layout = spec.layout or file_layout or DEFAULT_LAYOUT
    return Files(url, format_for(url, fmt), file_layout, spec.storage_options, spec.part_size_mb)


def table_destination(kind: str, spec: Named) -> Destination:
    """A table destination, its library imported only now (missing: one line naming the extra, exit 78)."""
    module, cls, library, extra = TABLE_KINDS[kind]
    needs(library, extra)
    destination = getattr(importlib.import_module(module), cls).from_named(spec)
    assert isinstance(destination, Destination)
    return destination


def _refuse_password_in(url: str) -> None:
    parts = urlsplit(url)
    if parts.password or {"password", "sslpassword"} & set(parse_qs(parts.query)):
        raise UsageError(
            "a password in the destination URL would land in shell history and logs",
            "name the destination in the config and keep its password in the keyring, env or a _FILE",
        )
