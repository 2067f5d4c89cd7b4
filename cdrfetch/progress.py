"""Progress of long steps: the silent base class, and the display on stderr (rich) for terminals."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as RichBoard
    from rich.progress import TaskID


class Progress:
    """Progress of one long step. This base class shows nothing (not a TTY, or -q)."""

    def update(self, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        """Report progress; `status` is a short text such as the provider's job state."""

    def close(self) -> None:
        """The step is over."""


class Board:
    """Owns one rich display shared by every step of a run; hands out `Progress` handles."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._board: RichBoard | None = None

    def __call__(self, what: str, total: float | None) -> Progress:
        if not self.enabled:
            return Progress()
        if self._board is None:
            from rich.console import Console
            from rich.progress import Progress as RichBoard

            self._board = RichBoard(console=Console(stderr=True), transient=True)
            self._board.start()
        return _Bar(self._board, self._board.add_task(what, total=total), what)

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        if self._board is not None:
            self._board.stop()


class _Bar(Progress):
    def __init__(self, board: RichBoard, task: TaskID, what: str) -> None:
        # the description is kept here: rich's `tasks` is a list that shrinks as bars are removed,
        # so indexing it by task id fails once an earlier bar is gone
        self.board, self.task, self.what = board, task, what

    def update(self, completed: float | None = None, total: float | None = None, status: str = "") -> None:
        description = f"{self.what} {status}".strip()
        self.board.update(self.task, completed=completed, total=total, description=description)

    def close(self) -> None:
        self.board.remove_task(self.task)
