"""Reading and quoting what servers we do not control send: JSON, CSV refusals, `extra` objects.

Kept free of pyarrow, so provider modules that only look at answers stay light to import.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from cdrfetch.errors import DataError

# What reading JSON from a server we do not control raises besides a JSONDecodeError: undecodable
# bytes and numbers over int()'s 4300-digit limit are ValueErrors too; nesting deeper than the
# interpreter's stack is a RecursionError.
JSON_FAILURES = (ValueError, RecursionError)

# built once: json.dumps with options builds an encoder per call
_EXTRA = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_quote: Callable[[str], str] = json.encoder.encode_basestring


def read_json(text: str | bytes, **options: Any) -> Any:
    """`json.loads` for untrusted text: every way it can fail to be a document is a ValueError, except
    nesting past the interpreter's stack: no proxy or error page does that, so it is bad data (65), not
    an answer worth asking for again."""
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise too_deep() from None


def too_deep() -> DataError:
    """The error of JSON nested past the interpreter's stack."""
    return DataError(
        "the server answered JSON nested deeper than the interpreter can follow",
        "a broken or hostile answer; report it to the provider",
    )


@contextmanager
def csv_errors(where: Callable[[], str]) -> Iterator[None]:
    """The csv module's refusals (a field over its 128 KiB limit) as a DataError at `where()` (file, line)."""
    try:
        yield
    except csv.Error as error:
        raise DataError(f"{where()}: unreadable CSV ({error})", "the file is damaged or in an unknown layout") from None


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)` cut to about `limit` characters, for an error message quoting hostile input."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past 4300 digits; a value nested past the stack
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} characters)"


def extra_json(fields: Mapping[str, Any]) -> str:
    """The `extra` column value: compact JSON, insertion order, non-ASCII kept readable.

    All-text objects (the usual case) are joined directly, which is several times faster than the
    encoder and gives the same text; tabular.json_objects builds the same text column-wise.
    """
    if all(type(value) is str for value in fields.values()):
        return "{" + ",".join([_quote(name) + ":" + _quote(value) for name, value in fields.items()]) + "}"
    return _EXTRA.encode(fields)
