"""The throttle-aware gate: bounded requests in flight, a shared pause on throttling, recovery after calm."""

from __future__ import annotations

import sys
import threading

import pytest

from cdrfetch.concurrency import Cancelled, Gate, prompt_thread_switches


def test_concurrency_climbs_back_after_calm_answers() -> None:
    gate = Gate(4)
    gate.enter()
    assert gate.leave(throttled=True) == 2
    changes = []
    for _ in range(3 * Gate.RECOVER_AFTER):
        gate.enter()
        changes.append(gate.leave(throttled=False))
    # +1 after each RECOVER_AFTER calm answers, never above the configured bound
    assert [c for c in changes if c is not None] == [3, 4]
    assert changes.index(3) == Gate.RECOVER_AFTER - 1 and gate.limit == 4
    gate.enter()
    assert gate.leave(throttled=True) == 2  # and a new throttle halves it again


def test_a_throttled_worker_pauses_every_worker() -> None:
    gate = Gate(4)
    gate.enter()
    assert gate.leave(throttled=True) == 2
    entered = threading.Event()

    def other() -> None:
        gate.enter()
        entered.set()
        gate.leave(throttled=False)
        gate.done()

    worker = threading.Thread(target=other)
    worker.start()
    assert not entered.wait(0.2)  # held shut while the throttled worker backs off
    gate.enter()  # the throttled worker comes back for its retry: the pause ends
    assert entered.wait(5)
    gate.leave(throttled=False)
    gate.done()
    worker.join(5)
    gate.abort()
    with pytest.raises(Cancelled):
        gate.enter()


def test_prompt_thread_switches_restores_the_process_wide_interval() -> None:
    before = sys.getswitchinterval()
    with prompt_thread_switches():
        assert sys.getswitchinterval() <= 0.0005
    assert sys.getswitchinterval() == before
