"""The process's pauses, measured: the event loop's lag and the garbage collector's pauses."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import prometheus_client
import pytest

from conftest import until
from orders_live.runtime.pauses import GcPauses, LoopLag


def _sample(registry: prometheus_client.CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.fast
async def test_a_held_loop_shows_as_lag_with_the_collections_that_held_it(caplog: pytest.LogCaptureFixture) -> None:
    registry = prometheus_client.CollectorRegistry()
    pauses = GcPauses(registry)
    lag = LoopLag(registry, pauses)
    pauses.install()
    probing = asyncio.create_task(lag.run())
    try:
        await until(lambda: _sample(registry, "orders_live_event_loop_lag_seconds_count") >= 3, what="probes")
        assert _sample(registry, "orders_live_event_loop_lag_seconds_bucket", le="0.25") == _sample(
            registry, "orders_live_event_loop_lag_seconds_count"
        )  # nothing held the loop yet
        with caplog.at_level(logging.WARNING):
            gc.collect()  # a full collection, inside the probe's wait
            time.sleep(0.4)  # noqa: ASYNC251  # the loop is held: what is measured
            await until(lambda: lag.worst >= 0.3, what="the held loop to be seen")
        over = _sample(registry, "orders_live_event_loop_lag_seconds_count") - _sample(
            registry, "orders_live_event_loop_lag_seconds_bucket", le="0.25"
        )
        assert over == 1
        assert _sample(registry, "orders_live_gc_pause_seconds_count", generation="2") >= 1
        [line] = [r.getMessage() for r in caplog.records if "event loop was held" in r.getMessage()]
        assert "collecting garbage" in line
    finally:
        probing.cancel()
        await asyncio.gather(probing, return_exceptions=True)
        pauses.remove()
    assert pauses._callback not in gc.callbacks
