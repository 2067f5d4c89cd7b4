"""Where the Delta tables live: storage options, opening or creating one table, its schema, and errors.

Every failure of deltalake (a Rust `OSError` or `DeltaError` with a multi-line, coloured message)
becomes one CdrfetchError line here, so no caller ever shows a traceback for an expected failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, Field, Schema
from deltalake.exceptions import DeltaError, DeltaProtocolError, SchemaMismatchError, TableNotFoundError

from cdrfetch.destinations.base import evolution
from cdrfetch.destinations.named import SECRET_MARKS
from cdrfetch.errors import AuthError, CdrfetchError, ConfigError, LocalIOError, UnavailableError
from cdrfetch.redact import REDACTOR

PARTITION = "start_date"
CREATE_ATTEMPTS = 5  # looks at a table another run is creating or evolving at the same moment
S3_SCHEMES = ("s3://", "s3a://")
# Options by which a user already chose how S3 commits are made safe (or chose not to).
COMMIT_CHOICES = ("conditional_put", "aws_conditional_put", "aws_s3_locking_provider", "aws_s3_allow_unsafe_rename")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PASSING = re.compile(r"(?i)connect|timed? ?out|dns|\b5\d\d\b")


def storage_options(url: str, given: Mapping[str, Any]) -> dict[str, str]:
    """The user's options verbatim, plus put-if-absent commits on S3 unless the user chose otherwise.

    delta-rs 1.x commits a version by writing `_delta_log/N.json` only if absent (S3's conditional
    write, `If-None-Match: *`); it dropped the DynamoDB lock. `conditional_put=etag` makes that
    explicit, so a change of the library's default can never turn concurrent runs into lost commits.
    """
    options = {name: str(value) for name, value in given.items()}  # deltalake takes strings only
    for name, value in options.items():
        if any(mark in name.lower() for mark in SECRET_MARKS):
            REDACTOR.add(value)
    chosen = {name.lower() for name in options} | {name.lower() for name in os.environ}
    if url.startswith(S3_SCHEMES) and not chosen & set(COMMIT_CHOICES):
        options["conditional_put"] = "etag"
    return options


def table_schema(schema: pa.Schema) -> pa.Schema:
    """The Arrow schema of a table: the output table's columns, then the partition column."""
    return schema.append(pa.field(PARTITION, pa.date32(), nullable=False))


def columns(fields: list[Field]) -> list[tuple[str, str]]:
    """(name, Delta type) of each field, as base.evolution compares them."""
    return [(f.name, str(getattr(f.type, "type", f.type))) for f in fields]


@dataclass
class Place:
    """One Delta table: its URI, what it must hold, and how to reach it."""

    name: str
    uri: str
    schema: pa.Schema  # the output table's Arrow schema, without the partition column
    options: dict[str, str] = field(default_factory=dict)

    def open(self) -> DeltaTable | None:
        """The table at its latest version (None when there is none yet)."""
        with translated(self.uri):
            try:
                return DeltaTable(self.uri, storage_options=self.options)
            except TableNotFoundError:
                return None

    def missing_columns(self, table: DeltaTable) -> list[Field]:
        """Columns an older table lacks (added at the end); refuses a table of another shape (78)."""
        partitions = table.metadata().partition_columns
        if partitions != [PARTITION]:
            raise ConfigError(
                f"existing table {self.uri} is partitioned by {partitions or 'nothing'}, not [{PARTITION}]",
                "point the destination at another directory, or migrate the table",
            )
        existing = [f for f in table.schema().fields if f.name != PARTITION]
        wanted = Schema.from_arrow(self.schema).fields
        return [wanted[position] for position in evolution(self.name, columns(existing), columns(wanted))]

    def ready(self) -> DeltaTable:
        """The table, created on first use and evolved when it is older; its schema checked.

        Runs starting together race to create (or evolve) the table: the loser's commit fails with a
        conflict because the winner already did the same work, so it looks at the table again.
        """
        from deltalake.exceptions import CommitFailedError

        for _ in range(CREATE_ATTEMPTS):
            try:
                return self._ready_once()
            except CommitFailedError:
                continue
        raise UnavailableError(
            f"{self.uri}: the table kept changing while this run was creating or evolving it",
            "run again: the other writers will have finished", retryable=True,
        )  # fmt: skip

    def _ready_once(self) -> DeltaTable:
        table = self.open()
        if table is None:
            with translated(self.uri):
                DeltaTable.create(
                    self.uri, Schema.from_arrow(table_schema(self.schema)), mode="ignore",
                    partition_by=[PARTITION], storage_options=self.options,
                )  # fmt: skip
            table = self.open()
            assert table is not None
        added = self.missing_columns(table)
        if added:  # nullable: the rows already stored have no value for them
            with translated(self.uri):
                table.alter.add_columns([Field(f.name, f.type, nullable=True) for f in added])
            table = self.open()
            assert table is not None
        return table


@contextmanager
def translated(where: str) -> Iterator[None]:
    """deltalake's errors as CdrfetchErrors (concurrent-commit conflicts pass through to be retried)."""
    from deltalake.exceptions import CommitFailedError

    try:
        yield
    except (CdrfetchError, CommitFailedError, TableNotFoundError):
        raise
    except SchemaMismatchError as exc:
        raise ConfigError(f"{where}: {one_line(exc)}", "point the destination at another table") from None
    except DeltaProtocolError as exc:
        raise ConfigError(f"{where}: {one_line(exc)}", "the table needs a newer Delta Lake writer") from None
    except (OSError, DeltaError) as exc:
        raise classify(where, one_line(exc)) from None


def classify(where: str, text: str) -> CdrfetchError:
    """The CdrfetchError a storage failure is, from the words of its message."""
    if "NoSuchBucket" in text:
        return UnavailableError(f"{where}: the bucket does not exist", "create the bucket, or fix the URL")
    if any(word in text for word in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")):
        return AuthError(f"{where}: access denied ({text})"[:300], _CREDENTIALS_HINT)
    if "Permission denied" in text or "PermissionDenied" in text:
        return AuthError(f"{where}: permission denied", "check the directory's owner and permissions")
    if "No space left" in text or "StorageFull" in text:
        return LocalIOError(f"cannot write {where}: no space left on device", "free disk space")
    if "Config error" in text or "Failed to parse" in text:
        return ConfigError(f"{where}: {text}"[:300], "check the destination's storage_options")
    retryable = bool(_PASSING.search(text))  # a dropped connection or a server error may pass
    return UnavailableError(f"{where}: {text}"[:300], _STORAGE_HINT, retryable=retryable)


def one_line(exc: BaseException) -> str:
    """deltalake's message on one line: colours and arrows gone, XML error bodies cut to their code."""
    text = _ANSI.sub("", str(exc)).replace("↳", " ")
    text = re.sub(r"<\?xml.*?<Code>(\w+)</Code>.*", r"\1", text, flags=re.S)
    return " ".join(text.split())


_CREDENTIALS_HINT = "check the cloud's credentials (env, profile or instance role) and the bucket's policy"
_STORAGE_HINT = "check the URL, the endpoint (AWS_ENDPOINT_URL) and the network"
