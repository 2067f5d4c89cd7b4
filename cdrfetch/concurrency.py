"""Concurrency helpers for providers that may run requests in parallel.

`Gate` bounds the requests in flight and backs off for everyone when the provider throttles;
`prompt_thread_switches` lets I/O-bound workers get the GIL quickly while the main thread parses.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cancelled(Exception):
    """Another page of the chunk failed; stop before sending more."""


class Gate:
    """Bounds the page requests in flight; throttling pauses every worker and lowers the bound.

    A throttled worker holds the gate shut while the core's retry loop backs it off; it reopens
    when that worker comes back for its next attempt (or ends). So all workers pause together
    without the provider sleeping. The bound halves on each throttled answer and climbs back by
    one after every `RECOVER_AFTER` answers in a row without throttling (additive increase,
    multiplicative decrease), so one busy minute does not slow a long pull for good.
    """

    RECOVER_AFTER = 50

    def __init__(self, limit: int) -> None:
        self.ceiling = self.limit = limit
        self._active = 0
        self._calm = 0  # answers in a row without throttling
        self._held: set[int] = set()
        self._aborted = False
        self._cond = threading.Condition()

    def enter(self) -> None:
        """Wait for a free slot and no pause in force (raises Cancelled after `abort`)."""
        me = threading.get_ident()
        with self._cond:
            self._held.discard(me)
            self._cond.notify_all()
            while not self._aborted and (self._active >= self.limit or self._held):
                self._cond.wait()
            if self._aborted:
                raise Cancelled
            self._active += 1

    def leave(self, throttled: bool) -> int | None:
        """Free the slot and adapt the bound; the new bound when it changed, else None.

        After throttling, everyone pauses and the bound halves; after enough calm answers it grows.
        """
        with self._cond:
            self._active -= 1
            before = self.limit
            if throttled:
                self._held.add(threading.get_ident())
                self._calm = 0
                self.limit = max(1, self.limit // 2)
            elif self.limit < self.ceiling:
                self._calm += 1
                if self._calm >= self.RECOVER_AFTER:
                    self._calm = 0
                    self.limit += 1
            self._cond.notify_all()
            return self.limit if self.limit != before else None

    def done(self) -> None:
        """The calling worker is finished (its pause, if any, ends)."""
        with self._cond:
            self._held.discard(threading.get_ident())
            self._cond.notify_all()

    def abort(self, aborted: bool = True) -> None:
        """Make waiting and future `enter` calls raise Cancelled (False: reopen for the next chunk)."""
        with self._cond:
            self._aborted = aborted
            self._cond.notify_all()


@contextmanager
def prompt_thread_switches() -> Iterator[None]:
    """While pages are in flight, let a worker whose answer arrived take the GIL within 0.5 ms.

    The main thread parses pages while the workers wait on sockets; with the default 5 ms switch
    interval every worker woken by its answer could wait that long for the parser, which added
    about 10% to a paged pull. Restored afterwards: the setting is process-wide.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
