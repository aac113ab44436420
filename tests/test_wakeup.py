"""Fast tier: ``Wakeup`` keeps ``asyncio.Event``'s rules without its waiter deque."""

from __future__ import annotations

import asyncio
import sys

import pytest

from conftest import until
from orders_live.runtime.wakeup import Wakeup

pytestmark = pytest.mark.fast


async def test_set_wakes_every_waiter_and_a_cancelled_one_leaves_the_others_waiting() -> None:
    wakeup = Wakeup()
    waiters = [asyncio.create_task(wakeup.wait()) for _ in range(3)]
    await until(lambda: len(wakeup._waiters or ()) == 3, what="three waiters")
    waiters[0].cancel()
    await until(lambda: len(wakeup._waiters or ()) == 2, what="the cancelled waiter to leave")
    assert not any(w.done() for w in waiters[1:])
    wakeup.set()
    await asyncio.gather(*waiters[1:])
    assert waiters[0].cancelled() and wakeup._waiters is None
    await wakeup.wait()  # set: at once
    wakeup.clear()
    late = asyncio.create_task(wakeup.wait())
    await until(lambda: wakeup._waiters is not None, what="a waiter after the clear")
    assert not late.done() and not wakeup.is_set()
    wakeup.set()
    await late


def test_an_idle_wakeup_is_smaller_than_an_event() -> None:
    event = asyncio.Event()
    assert sys.getsizeof(Wakeup()) + 64 < sys.getsizeof(event.__dict__) + sys.getsizeof(event._waiters)
