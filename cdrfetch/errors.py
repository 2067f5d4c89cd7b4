"""The error tree and the process exit codes.

Every expected failure is a `CdrfetchError` carrying a one-line message and a hint saying what to
do. The CLI prints both on stderr and exits with the error's `exit_code`; nothing else in the
library prints. Anything that is not a `CdrfetchError` is a bug (exit 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, modelled on BSD sysexits (see the README)."""

    OK = 0
    INTERNAL = 1  # a bug: short traceback + "please report"
    USAGE = 2
    PARTIAL = 3  # some chunks or tables failed; what succeeded was written
    DATA = 65  # the provider sent data we cannot parse
    UNAVAILABLE = 69  # provider unreachable or failing after retries
    CANT_CREATE = 73  # an output file or directory cannot be created
    IO_ERROR = 74  # reading or writing a local file failed (disk full, I/O error)
    TEMPORARY = 75  # try again later: lock held, export not ready, rate limited
    AUTH = 77  # credentials or permissions rejected
    CONFIG = 78  # missing or invalid configuration


# Exit codes a shell reports for a process ended by a signal (128 + signal number).
INTERRUPTED = 130  # Ctrl-C (SIGINT)
TERMINATED = 143  # SIGTERM (systemd, Kubernetes, kill)
BROKEN_PIPE = 141  # the reader of stdout went away (SIGPIPE)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the same clean-up runs as the exception unwinds."""

    exit_code = TERMINATED


class CdrfetchError(Exception):
    """Base of every expected error: a message, a hint, an exit code.

    `retryable` marks a failure the core's retry loop may try again (5xx, throttling, a dropped
    connection); `retry_after` is the server's requested delay in seconds, when it gave one.
    """

    exit_code: ExitCode = ExitCode.INTERNAL
    http_status: int | None = None  # the HTTP status behind the error, when there was one

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UsageError(CdrfetchError):
    """The command line asks for something impossible."""

    exit_code = ExitCode.USAGE


class PartialResultError(CdrfetchError):
    """Part of the run failed; the rest was written."""

    exit_code = ExitCode.PARTIAL


class DataError(CdrfetchError):
    """The provider sent data that cannot be parsed."""

    exit_code = ExitCode.DATA


class UnavailableError(CdrfetchError):
    """The provider failed (5xx, internal error codes) even after retries."""

    exit_code = ExitCode.UNAVAILABLE


class CantCreateError(CdrfetchError):
    """An output (file, directory) cannot be created where it was asked for."""

    exit_code = ExitCode.CANT_CREATE


class LocalIOError(CdrfetchError):
    """A local read or write failed midway (disk full, I/O error)."""

    exit_code = ExitCode.IO_ERROR


class TemporaryError(CdrfetchError):
    """Try again later: a lock is held, an export is not ready, the provider throttles."""

    exit_code = ExitCode.TEMPORARY


class AuthError(CdrfetchError):
    """The provider rejected the credentials, the signature or this host."""

    exit_code = ExitCode.AUTH


class ConfigError(CdrfetchError):
    """A setting or secret is missing or invalid."""

    exit_code = ExitCode.CONFIG


def suggest(word: str, known: Iterable[str]) -> str:
    """` (did you mean X?)` for a close match among `known`, else '': the end of an "unknown ..." message."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
