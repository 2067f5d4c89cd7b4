"""How a command body runs: expected errors become one line and their exit code, bugs a short report.

Imported at start-up by the CLI, so only typer and the error tree are loaded here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from cdrfetch.errors import BROKEN_PIPE, INTERRUPTED, CdrfetchError, ExitCode


def fail(error: CdrfetchError) -> NoReturn:
    """Print one redacted error line (and its hint) on stderr, in the run's log format, and exit with its code."""
    from cdrfetch import logs

    logs.final(error.message, error.hint, exit_code=int(error.exit_code))
    raise typer.Exit(int(error.exit_code))


def guarded(action: Callable[[], int | None]) -> None:
    """Run a command body: expected errors -> one line + exit code; bugs -> short report, exit 1."""
    from cdrfetch import logs

    try:
        code = action()
    except CdrfetchError as error:
        fail(error)
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated): every clean-up has run by now
        code = getattr(stop, "exit_code", INTERRUPTED)
        logs.final("terminated" if code != INTERRUPTED else "interrupted", prefix="", exit_code=code)
        raise typer.Exit(code) from None
    except BrokenPipeError:  # `cdrfetch ... -o - | head`: the reader left; say so once, like SIGPIPE would
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        logs.final("output pipe closed by the reader; the run was not recorded as complete", prefix="")
        raise typer.Exit(BROKEN_PIPE) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        import traceback

        frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4)
        logs.final("internal error (a bug): please report it with the lines above", prefix="", details=frames)
        raise typer.Exit(int(ExitCode.INTERNAL)) from None
    finally:
        logs.reset()
    raise typer.Exit(code or 0)
