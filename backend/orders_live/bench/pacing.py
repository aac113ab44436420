"""Writes on a schedule: the bench's writers start write ``n`` at ``n / rate`` seconds.

A write does not wait for the ones before it (a slow answer must not lower the rate), so each
is a task of its own; the schedule counts the writes it could only start late, which says the
writer, not the service, was the bottleneck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

LATE = 0.05  # seconds behind its time after which a start counts as late


async def paced(
    rate: float, duration: float, one: Callable[[int], Coroutine[Any, Any, None]], name: str = "bench-write"
) -> int:
    """Start ``one(n)`` for n in range(rate × duration), each at its time; wait for all of them.
    Returns how many started more than ``LATE`` seconds behind their time."""
    loop = asyncio.get_running_loop()
    start, late = loop.time(), 0
    tasks = []
    for n in range(int(rate * duration)):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -LATE:
            late += 1
        tasks.append(asyncio.create_task(one(n), name=f"{name}-{n}"))
    await asyncio.gather(*tasks)
    return late
