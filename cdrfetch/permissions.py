"""The permission rules of files that hold secrets or decide where secrets go.

A secret file (a config file holding a secret, a `*_FILE`) that group or others can read is refused,
and so is a config file others can write: it names the `base_url` every secret is sent to.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cdrfetch.errors import ConfigError


def refuse_readable_secret(path: Path, name: str) -> None:
    """A file holding a secret (a config file, a `*_FILE`) that group or others can read is refused."""
    if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds secret {name!r} but is readable by group/others",
            f"chmod 600 {path} (in Kubernetes: defaultMode 0400), or keep the secret in the keyring with `login`",
        )


def refuse_writable_config(path: Path) -> None:
    """A config file others can change would let them choose where the secrets are sent (`base_url`)."""
    if os.name == "posix" and path.stat().st_mode & stat.S_IWOTH:
        raise ConfigError(f"{path} is writable by others, who could redirect the secrets", f"chmod o-w {path}")


def read_secret_file(path_text: str, variable: str, secret: str | None) -> str:
    """The value in a `*_FILE`; the file of a secret setting follows the permission rule of secrets."""
    path = Path(path_text).expanduser()
    try:
        if secret is not None:
            refuse_readable_secret(path, secret)
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror}", "point it at a readable file") from None
