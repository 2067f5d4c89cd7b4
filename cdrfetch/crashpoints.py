"""Named points where the crash-safety tests kill the process (SIGKILL) on purpose.

Inert unless $CDRFETCH_CRASHPOINT names the point: then the process dies there, abruptly, with no
cleanup, exactly like a power cut or an OOM kill. The tests use it to prove that no half file
ever appears under a final name and that the ledger never runs ahead of the data.
"""

from __future__ import annotations

import os
import signal


def reach(point: str) -> None:
    """Die here if $CDRFETCH_CRASHPOINT asks for `point`."""
    if os.environ.get("CDRFETCH_CRASHPOINT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
