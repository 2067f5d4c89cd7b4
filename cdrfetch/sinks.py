"""Writers for CSV, JSON Lines, JSON and Parquet, to a file (atomically) or to stdout.

A file is written under a temp name in its final directory and renamed into place by `commit`
only when complete (after fsync), so a crash never leaves a half file under the final name.
Text formats render timestamps as ISO-8601 UTC with `Z` (milliseconds only when non-zero), cost
as a plain decimal string and null as an empty CSV cell or JSON null.
"""

from __future__ import annotations

import abc
import contextlib
import sys
from pathlib import Path
from typing import IO, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from cdrfetch import jsonrows
from cdrfetch.errors import CantCreateError, UsageError
from cdrfetch.files import AtomicFile

FORMATS = ("parquet", "csv", "jsonl", "json")
Rows = TypeVar("Rows", pa.RecordBatch, pa.Table)
TEXT_FORMATS = ("csv", "jsonl", "json")


def format_for(path: str | None, explicit: str | None) -> str:
    """The output format: `--format`, else the file suffix, else parquet (csv on stdout).

    A suffix that contradicts `--format`, or an unknown suffix without it, is refused: the file
    would otherwise hold something else than its name says.
    """
    explicit = explicit.lower() if explicit else explicit
    if explicit and explicit not in FORMATS:
        raise UsageError(f"unknown format {explicit!r}", f"use one of {', '.join(FORMATS)}")
    if path == "-":
        fmt = explicit or "csv"
        _check_stdout(fmt)
        return fmt
    suffix = "" if names_directory(path) else Path(str(path)).suffix.lstrip(".").lower()
    if explicit and suffix in FORMATS and suffix != explicit:
        raise UsageError(f"-o {path} names a .{suffix} file but --format is {explicit}", "make the two agree")
    if not explicit and suffix and suffix not in FORMATS:
        raise UsageError(
            f"-o {path}: cdrfetch does not write .{suffix} files",
            f"name a .{'/.'.join(FORMATS)} file, add --format, or end a directory with '/'",
        )
    return explicit or (suffix if suffix in FORMATS else "parquet")


def names_directory(output: str | None) -> bool:
    """Whether `-o` names a directory: none given, an existing one, a trailing '/', or no suffix."""
    if output is None:
        return True
    return output.endswith(("/", "\\")) or Path(output).is_dir() or not Path(output).suffix


def _check_stdout(fmt: str) -> None:
    if fmt not in TEXT_FORMATS:
        raise UsageError(f"{fmt} cannot be written to stdout", "use -o FILE, or --format csv|jsonl|json")


def as_text_columns(batch: Rows, *, keep_integers: bool = False) -> Rows:
    """The batch with timestamps, decimals and numbers rendered as text (nulls stay null).

    `keep_integers` leaves integer columns as numbers (JSON has them; a decimal keeps its exact
    digits only as a string).
    """
    columns = [
        column if keep_integers and pa.types.is_integer(column.type) else _text(column) for column in batch.columns
    ]
    return type(batch).from_arrays(columns, names=batch.schema.names)


def _text(column: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type):
        # The UTC wall time cast to text ("YYYY-MM-DD HH:MM:SS.fff" for ms) is the text strftime gives
        # with a "T", at a tenth of its cost (checked over the years 1-9999).
        wall = pc.cast(pc.cast(column, pa.timestamp(column.type.unit)), pa.string())
        rendered = pc.replace_substring_regex(
            pc.utf8_replace_slice(wall, 10, 11, "T"), pattern=r"\.000$", replacement=""
        )
        return pc.binary_join_element_wise(rendered, "Z", "")
    if pa.types.is_string(column.type):
        return column
    return pc.cast(column, pa.string())


class Sink(abc.ABC):
    """Writes one table. `target` None means stdout."""

    def __init__(self, schema: pa.Schema, target: Path | None) -> None:
        self.schema = schema
        self.target = target
        self.rows = 0
        self._file: AtomicFile | None = None
        if target is None:
            self._stream: IO[bytes] = sys.stdout.buffer
        else:
            self._file = AtomicFile(target)
            self._stream = self._file.stream
        self.begin()

    def begin(self) -> None:
        """Write whatever precedes the first row."""

    @abc.abstractmethod
    def write(self, batch: Rows) -> None:
        """Append rows: a batch, or a table of several (written as one, never copied into one)."""

    def end(self) -> None:
        """Write whatever follows the last row."""

    def commit(self) -> Path | None:
        """Finish the output and move it into place; returns the final path (None for stdout)."""
        self.end()
        self._stream.flush()
        return None if self._file is None else self._file.commit()

    def abort(self) -> None:
        """Drop the temp file; the final name is left untouched."""
        if self._file is not None:
            # close the format writer first so it does not flush into a closed file later
            with contextlib.suppress(Exception):
                self.end()
            self._file.abort()


class ParquetSink(Sink):
    def begin(self) -> None:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self._stream, self.schema, compression="zstd")

    def write(self, batch: Rows) -> None:
        self._writer.write(batch)  # a table becomes one row group, however many chunks it has
        self.rows += batch.num_rows

    def end(self) -> None:
        self._writer.close()


class CsvSink(Sink):
    def begin(self) -> None:
        import pyarrow.csv as pcsv

        text_schema = pa.schema([pa.field(name, pa.string()) for name in self.schema.names])
        self._writer = pcsv.CSVWriter(self._stream, text_schema)

    def write(self, batch: Rows) -> None:
        self._writer.write(as_text_columns(batch))
        self.rows += batch.num_rows

    def end(self) -> None:
        self._writer.close()


class JsonLinesSink(Sink):
    """One compact JSON object a line; `extra` (already JSON text) embedded as an object, not a string."""

    def write(self, batch: Rows) -> None:
        if not batch.num_rows:
            return
        rows = jsonrows.json_objects(as_text_columns(batch, keep_integers=True))
        self._write_rows(rows)
        self.rows += batch.num_rows

    def _write_rows(self, rows: pa.Array | pa.ChunkedArray) -> None:
        jsonrows.write_lines(self._stream, rows, "", "\n")


class JsonSink(JsonLinesSink):
    """One JSON array, an object a line."""

    def begin(self) -> None:
        self._stream.write(b"[")

    def _write_rows(self, rows: pa.Array | pa.ChunkedArray) -> None:
        if self.rows == 0:  # the first object opens the array's first line; each later one follows a comma
            self._stream.write(b"\n")
            jsonrows.write_lines(self._stream, rows[:1], "", "\n")
            rows = rows[1:]
        jsonrows.write_lines(self._stream, rows, ",\n", "\n")

    def end(self) -> None:
        self._stream.write(b"\n]\n" if self.rows else b"]\n")


SINKS: dict[str, type[Sink]] = {"parquet": ParquetSink, "csv": CsvSink, "jsonl": JsonLinesSink, "json": JsonSink}


def open_sink(fmt: str, schema: pa.Schema, target: Path | None) -> Sink:
    """A sink for `fmt` writing `schema` rows to `target` (None: stdout, text formats only)."""
    if target is None:
        _check_stdout(fmt)
    try:
        return SINKS[fmt](schema, target)
    except OSError as exc:
        raise CantCreateError(
            f"cannot create {target}: {exc.strerror or exc}", "-o must name a writable directory or file path"
        ) from None
