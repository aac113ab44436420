"""Fast tier: the bench's writers start each write at its time and count the late ones."""

from __future__ import annotations

import time

import pytest

from orders_live.bench.pacing import paced

pytestmark = pytest.mark.fast


async def test_every_write_starts_once_in_order_and_none_is_late_on_an_idle_loop() -> None:
    started: list[int] = []

    async def one(n: int) -> None:
        started.append(n)

    assert await paced(200, 0.1, one) == 0
    assert started == list(range(20))


async def test_writes_the_loop_could_only_start_behind_their_time_are_counted_late() -> None:
    async def one(n: int) -> None:
        if n == 0:
            time.sleep(0.2)  # noqa: ASYNC251 (the writer's loop held: the next starts fall behind)

    late = await paced(100, 0.3, one)
    assert 5 <= late < 30
