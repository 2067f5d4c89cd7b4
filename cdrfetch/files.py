"""Files cdrfetch writes: atomically (temp file beside the target, fsync, rename, fsync of the directory),
and where its state lives.

Every output and state file goes through `AtomicFile`, so a crash or kill at any moment leaves either
the previous file or the complete new one under the final name, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, TypeVar

from cdrfetch.errors import LocalIOError

T = TypeVar("T")


class AtomicFile:
    """A binary file written under a hidden temp name in its final directory; `commit` moves it into place."""

    def __init__(self, target: Path, *, suffix: str = ".partial") -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_orphans(target.parent, f".{target.name}.")  # temp files of killed runs, never a live one's
        # the pid in the name tells a later run whether the writer is still alive (see remove_orphans)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=suffix, dir=target.parent)
        self.temp = Path(name)
        self.stream: IO[bytes] = os.fdopen(handle, "wb")

    def commit(self) -> Path:
        """Flush to disk and rename into place (the directory entry made durable too)."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        os.replace(self.temp, self.target)
        fsync_directory(self.target.parent)
        return self.target

    def abort(self) -> None:
        """Drop the temp file; the final name is left untouched."""
        with contextlib.suppress(OSError):
            self.stream.close()
        self.temp.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, as another user's process
    return True


def remove_orphans(directory: Path, prefix: str) -> None:
    """Delete what killed runs left in `directory`: entries named `<prefix><pid>.…` or `<prefix><pid>-…`
    whose pid no longer runs. A live run's files are never touched, whoever it is."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    for path in entries:
        match = re.match(r"(\d+)[.-]", path.name[len(prefix) :]) if path.name.startswith(prefix) else None
        if match is None or alive(int(match.group(1))):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def write_atomically(target: Path, data: bytes) -> None:
    """`data` as the whole content of `target`, all or nothing."""
    out = AtomicFile(target, suffix=".tmp")
    try:
        out.stream.write(data)
        out.commit()
    except BaseException:
        out.abort()
        raise


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def data_dir() -> Path:
    """Where state lives: $CDRFETCH_DATA_DIR, else the platform's user data dir."""
    if os.environ.get("CDRFETCH_DATA_DIR"):
        return Path(os.environ["CDRFETCH_DATA_DIR"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("cdrfetch"))


@dataclass
class Verified(Generic[T]):
    """A checked download (`value`: what `verify` made of it) and the scratch directory holding its files.

    Use as a context manager: the directory and everything unpacked into it go when the block ends.
    """

    value: T
    directory: Path

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> T:
        return self.value

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_block(out: IO[bytes], block: bytes, target: Path) -> None:
    """A local write; a full disk is the run's failure (74), never a reason to download again."""
    try:
        out.write(block)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise LocalIOError(f"cannot write {target.parent}: {exc.strerror}", "free disk space (or set TMPDIR)") from None


@contextlib.contextmanager
def local_io(where: str) -> Iterator[None]:
    """A failing local write (disk full, I/O error) ends the run with exit 74, naming the place."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader of stdout left: the CLI reports that itself
    except OSError as exc:
        raise LocalIOError(
            f"cannot write {where}: {exc.strerror or exc}", "free disk space, or check the disk"
        ) from None
