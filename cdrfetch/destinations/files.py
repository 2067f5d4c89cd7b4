"""Files: a local directory or file, stdout, or objects in a bucket (`s3://`, `gs://`, `az://` via fsspec).

Local files are written under a temp name beside their final name and renamed into place on commit.
Objects are first written in full to a local temp file, then uploaded in one PUT, or as a multipart
upload that is completed only when every part arrived (and aborted otherwise): a failed or killed
run never leaves a half object under the final key.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdrfetch import archive, crashpoints
from cdrfetch.destinations import layout
from cdrfetch.destinations.base import Chunk, Destination, Load, Where
from cdrfetch.errors import CantCreateError, UnavailableError
from cdrfetch.files import local_io
from cdrfetch.sinks import Sink, names_directory, open_sink

log = logging.getLogger("cdrfetch.pipeline")
DEFAULT_DIR = "cdrs"
LOCAL_SCHEMES = ("file://",)
PART_SIZE_MB = 64  # multipart part size for large objects (S3 allows 5 MiB to 5 GiB)


def is_object_url(output: str | None) -> bool:
    """Whether `-o` names object storage (`scheme://`, other than file://)."""
    return output is not None and "://" in output and not output.startswith(LOCAL_SCHEMES)


class Files(Destination):
    """Files in `output` (None: ./cdrs/, '-': stdout), in format `fmt`, named by `file_layout`."""

    def __init__(
        self,
        output: str | None,
        fmt: str,
        file_layout: str = layout.DEFAULT_LAYOUT,
        storage_options: Mapping[str, Any] | None = None,
        part_size_mb: int | None = None,
    ) -> None:
        if output is not None and output.startswith(LOCAL_SCHEMES):
            output = output[len("file://") :] or "/"
        self.output = output
        self.fmt = fmt
        self.layout = layout.check(file_layout)
        self.storage_options = dict(storage_options or {})
        self.remote = is_object_url(output)
        self.part_size = (part_size_mb or PART_SIZE_MB) * 2**20

    def describe(self) -> str:
        return "stdout" if self.output == "-" else (self.output or f"{DEFAULT_DIR}/")

    def targets(self, tables: Mapping[str, pa.Schema], where: Where) -> dict[str, str | None]:
        """Table -> file path or object URL (None: stdout, calls only)."""
        if self.output == "-":
            return {"calls": None}
        root = self.output or DEFAULT_DIR
        if names_directory(root) or (self.remote and not Path(root.split("://", 1)[1]).suffix):
            calls = root.rstrip("/") + "/" + layout.path_of(self.layout, where, self.fmt)
        else:
            calls = root
        return {table: calls if table == "calls" else layout.beside(calls, table) for table in tables}

    def planned(self, tables: Mapping[str, pa.Schema], where: Where) -> dict[str, str]:
        return {table: target or "stdout" for table, target in self.targets(tables, where).items()}

    def open(self, tables: Mapping[str, pa.Schema], where: Where) -> Load:
        if self.output == "-" and len(tables) > 1:
            log.warning("stdout carries the calls table only; use -o DIR for %s", ", ".join(tables))
        return FileLoad(self, tables, self.targets(tables, where))

    def check(self, tables: Mapping[str, pa.Schema]) -> str:
        if not self.remote and self.output != "-":
            root = self.output or DEFAULT_DIR
            directory = Path(root) if names_directory(root) else Path(root).parent
            try:
                directory.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=directory).close()
            except OSError as exc:
                raise CantCreateError(
                    f"cannot write in {directory}: {exc.strerror}", "-o must name a writable directory"
                ) from None
            return f"{self.describe()} is writable"
        if self.remote:
            fs, path = self._filesystem(self.output or "")
            try:
                fs.ls(path.split("/", 1)[0])
            except Exception as exc:  # every fsspec backend raises its own errors
                raise UnavailableError(f"{self.describe()}: {type(exc).__name__}: {exc}", _STORAGE_HINT) from None
        return self.describe()

    def _filesystem(self, url: str) -> tuple[Any, str]:
        from cdrfetch.destinations.base import needs

        needs("fsspec", "s3")
        import fsspec

        try:
            # a fresh client: a cached one would keep an endpoint or credentials the environment no longer has
            fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True, **self.storage_options)
            return fs, str(path)
        except (ImportError, ValueError) as exc:
            scheme = url.split("://", 1)[0]
            raise CantCreateError(
                f"cannot write {scheme}:// objects: {exc}", "pip install 'cdrfetch[s3]' (s3fs), gcsfs or adlfs"
            ) from None

    def upload(self, local: Path, url: str) -> None:
        """Put one finished file under `url` (multipart uploads are completed only on success)."""
        from fsspec.callbacks import Callback

        class PartSent(Callback):  # type: ignore[misc]
            def relative_update(self, inc: int = 1) -> None:
                super().relative_update(inc)
                crashpoints.reach("object-mid-upload")  # a multipart upload reports each part before completing

        fs, path = self._filesystem(url)
        options = {"chunksize": self.part_size} if url.startswith(("s3://", "s3a://")) else {}
        try:
            fs.put_file(str(local), path, callback=PartSent(), **options)
        except OSError as exc:
            raise UnavailableError(f"cannot upload {url}: {exc}", _STORAGE_HINT, retryable=True) from None
        except Exception as exc:  # botocore and the other SDKs raise their own error classes
            raise UnavailableError(f"cannot upload {url}: {type(exc).__name__}: {exc}", _STORAGE_HINT) from None


_STORAGE_HINT = "check the bucket, the endpoint and the cloud's credentials (env, profile or instance role)"


class FileLoad(Load):
    """One pull's files: one sink per table, committed together at the end of the pull."""

    def __init__(self, files: Files, tables: Mapping[str, pa.Schema], targets: Mapping[str, str | None]) -> None:
        self.files = files
        self.targets = dict(targets)
        self.tables = tables
        self.staging = Path(tempfile.mkdtemp(prefix="cdrfetch-upload-")) if files.remote else None
        self.sinks: dict[str, Sink] = {}
        self._open_sinks()

    def _open_sinks(self) -> None:
        try:
            for table, target in self.targets.items():
                self.sinks[table] = open_sink(self.files.fmt, self.tables[table], self._local(table, target))
        except BaseException:
            self.abort()
            raise

    def streams(self) -> bool:
        """Until a row is written, a chunk that fails is taken back by starting the files afresh (not on
        stdout, where written rows are gone)."""
        return all(self.targets.values()) and not any(sink.rows for sink in self.sinks.values())

    def _local(self, table: str, target: str | None) -> Path | None:
        """Where a table's file is written: its final path, or a staging file before upload."""
        if target is None:
            return None
        if self.staging is not None:
            return self.staging / f"{table}.{self.files.fmt}"
        return Path(target)

    def store(self, chunk: Chunk, tables: Mapping[str, Iterable[pa.RecordBatch]]) -> dict[str, int]:
        untouched = self.streams()
        try:
            return self._append(tables)
        except BaseException:
            if untouched:  # nothing of an earlier chunk is in the files: start them afresh, empty
                for sink in self.sinks.values():
                    sink.abort()
                self.sinks.clear()
                self._open_sinks()
            raise

    def _append(self, tables: Mapping[str, Iterable[pa.RecordBatch | pa.Table]]) -> dict[str, int]:
        stored: dict[str, int] = {}
        for table, batches in tables.items():
            sink = self.sinks.get(table)
            if sink is None:  # stdout carries the calls table only
                continue
            before = sink.rows
            for batch in batches:
                with local_io(self.targets[table] or "stdout"):
                    sink.write(batch)
            stored[table] = sink.rows - before
        return stored

    def commit(self) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        for table in list(self.sinks):
            sink, target = self.sinks.pop(table), self.targets[table]
            with local_io(target or "stdout"):
                path = sink.commit()
            entry: dict[str, object] = {"table": table, "path": target or "-", "rows": sink.rows}
            if path is not None:
                entry.update(bytes=path.stat().st_size, sha256=archive.file_digest(path, "sha256"))
                if self.files.remote and target is not None:
                    self.files.upload(path, target)
                    path.unlink()
            entries.append(entry)
        self.abort()  # the staging directory
        return entries

    def abort(self) -> None:
        for sink in self.sinks.values():
            sink.abort()
        self.sinks.clear()
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
