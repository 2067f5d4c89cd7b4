"""One run at a time per (profile, provider, account): a file lock in the data directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from cdrfetch.errors import TemporaryError
from cdrfetch.files import data_dir
from cdrfetch.ledger import Key


@contextmanager
def exclusive(key: Key, wait_seconds: float) -> Iterator[None]:
    """Hold the lock of `key`, waiting up to `wait_seconds`; TemporaryError (75) if still held."""
    from filelock import FileLock, Timeout

    name = "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in (key.profile, key.provider, key.account))
    path = data_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=wait_seconds)
    try:
        lock.acquire()
    except Timeout:
        raise TemporaryError(
            f"another cdrfetch run holds the lock for {key.provider} account {key.account} (profile {key.profile})",
            f"wait for it, or pass --wait-lock SECONDS; lock file {path}",
        ) from None
    try:
        yield
    finally:
        lock.release()
