"""The OS keyring, made safe for cron: it never hangs and never prompts.

Headless Linux has no Secret Service; a locked one can block forever waiting for an unlock
dialog nobody sees. Every call therefore runs in a worker thread with a deadline
($CDRFETCH_KEYRING_TIMEOUT seconds, default 10), and a missing backend is reported with the
alternatives instead of a stack trace.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cdrfetch.errors import ConfigError

SERVICE = "cdrfetch"
HEADLESS_HINT = (
    "set the CDRFETCH_<PROVIDER>_<KEY> environment variable or its _FILE variant, "
    "or install a file backend (pip install keyrings.alt) and set PYTHON_KEYRING_BACKEND"
)
T = TypeVar("T")


class KeyringError(ConfigError):
    """The keyring cannot be used here: no backend, locked, or failing."""


def timeout_seconds() -> float:
    """How long a keyring call may take before it counts as hung."""
    raw = os.environ.get("CDRFETCH_KEYRING_TIMEOUT", "10")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigError(f"CDRFETCH_KEYRING_TIMEOUT={raw!r} is not a number of seconds from 0 to 3600", "e.g. 10")
    return seconds


def backend_problem() -> str | None:
    """Why the keyring cannot be used here, or None when a real backend is active."""
    import keyring
    from keyring.backends import chainer, fail, null

    backend = keyring.get_keyring()
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return "no keyring backend is available (headless machine?)"
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return "no keyring backend is available (headless machine?)"
    return None


def _call(action: Callable[[], T], what: str) -> T:
    """Run a keyring call with a deadline, turning every failure into a KeyringError."""
    problem = backend_problem()
    if problem:
        raise KeyringError(f"keyring: {problem}", HEADLESS_HINT)
    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["value"] = action()
        except Exception as exc:  # any backend failure is reported, never raised raw
            outcome["error"] = exc

    thread = threading.Thread(target=worker, name="keyring", daemon=True)
    thread.start()
    thread.join(timeout_seconds())
    if thread.is_alive():
        raise KeyringError(f"keyring: {what} did not answer within {timeout_seconds():g}s (locked?)", HEADLESS_HINT)
    if "error" in outcome:
        error = outcome["error"]
        raise KeyringError(f"keyring: {what} failed: {type(error).__name__}", HEADLESS_HINT)
    return outcome["value"]  # type: ignore[no-any-return]


def get(user: str) -> str | None:
    """The stored secret for `user`, or None."""
    import keyring

    return _call(lambda: keyring.get_password(SERVICE, user), "reading a secret")


def put(user: str, secret: str) -> None:
    """Store `secret` for `user`."""
    import keyring

    _call(lambda: keyring.set_password(SERVICE, user, secret), "storing a secret")


def delete(user: str) -> bool:
    """Remove the secret for `user`; False when there was none."""
    import keyring
    from keyring.errors import PasswordDeleteError

    def remove() -> bool:
        try:
            keyring.delete_password(SERVICE, user)
        except PasswordDeleteError:
            return False
        return True

    return _call(remove, "deleting a secret")


def plaintext_backend() -> str | None:
    """The name of the active backend when it keeps secrets unencrypted on disk (keyrings.alt), else None."""
    import keyring

    backend = keyring.get_keyring()
    found = [backend, *getattr(backend, "backends", [])]
    plain = [b for b in found if type(b).__module__.startswith("keyrings.alt") and "Plaintext" in type(b).__name__]
    return type(plain[0]).__name__ if plain else None
