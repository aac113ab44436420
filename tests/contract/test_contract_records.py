"""What a source keeps for the service, over every source: checkpoints round-trip, and the
agent's action log stays gap-free and ordered while several clients append at once."""

from __future__ import annotations

import asyncio
import contextlib

from contract_sources import Subject, subject

from conftest import until
from orders_live.domain.agent_action import NewAgentAction
from orders_live.domain.source import ActionLog

__all__ = ["subject"]

WRITERS = 8  # concurrent appends per client
ROUNDS = 25  # appends per writer


async def test_checkpoints_round_trip_per_instance(subject: Subject) -> None:
    checkpoints = subject.source.checkpoints
    assert await checkpoints.load_checkpoint("a") is None
    await checkpoints.save_checkpoint("a", "pg:12.3")
    await checkpoints.save_checkpoint("b", "nx:7")
    assert await checkpoints.load_checkpoint("a") == "pg:12.3"
    await checkpoints.save_checkpoint("a", "8263A1B2C3000000012B0429")
    assert await checkpoints.load_checkpoint("a") == "8263A1B2C3000000012B0429"
    assert await checkpoints.load_checkpoint("b") == "nx:7"
    async with subject.another() as other:  # another instance's client reads what was saved
        assert await other.checkpoints.load_checkpoint("b") == "nx:7"
        assert await other.checkpoints.load_checkpoint("{'$ne': null}") is None


async def _append(log: ActionLog, writer: str) -> None:
    for n in range(ROUNDS):
        await log.append(NewAgentAction(kind="no_action", trigger="question", reason=f"{writer}/{n}"))


async def test_the_action_log_is_gap_free_and_ordered_under_concurrent_appends(subject: Subject) -> None:
    """A tail reads ``after`` its last seq while two clients append: it must see every record,
    once, in seq order (a record visible before a lower-numbered one would be skipped)."""
    expected = 2 * WRITERS * ROUNDS
    log = subject.source.actions
    tailed: list[int] = []

    async def tail() -> None:
        while True:
            for record in await log.after(tailed[-1] if tailed else 0, 1_000):
                tailed.append(record["seq"])
            await asyncio.sleep(0)

    async with subject.another() as other:
        reader = asyncio.create_task(tail())
        try:
            await asyncio.gather(
                *(_append(each, f"{i}{n}") for i, each in enumerate((log, other.actions)) for n in range(WRITERS))
            )
            stored = [record["seq"] for record in await log.after(0, 10_000)]
            await until(lambda: bool(tailed) and tailed[-1] == stored[-1], within=10, what="the tail at the end")
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    assert len(stored) == expected
    assert stored == list(range(stored[0], stored[0] + expected)), "seqs are one run, in order"
    assert tailed == stored, f"the tail skipped {sorted(set(stored) - set(tailed))[:10]}"
    reasons = [record["reason"] for record in await log.recent(10_000)]
    assert sorted(reasons) == sorted(f"{i}{n}/{r}" for i in range(2) for n in range(WRITERS) for r in range(ROUNDS))
