"""The fan-out's frames are written a round at a time: the loop runs between rounds, and each
client's frames keep their order, before anything its own writer sends."""

from __future__ import annotations

import asyncio

import pytest

from conftest import until
from orders_live.transports.socketio.write_rounds import WriteRounds


class Client:
    def __init__(self, name: str, wire: list[tuple[str, bytes]]) -> None:
        self.name, self.wire = name, wire
        self.deferred = 0

    def write_deferred(self, frame: bytes) -> None:
        self.deferred -= 1
        self.wire.append((self.name, frame))


@pytest.mark.fast
async def test_frames_are_written_in_order_a_round_per_turn_with_the_loop_running_between() -> None:
    rounds, wire = WriteRounds(per_round=10), []
    clients = [Client(f"c{n}", wire) for n in range(5)]
    for change in range(5):  # five changes to five clients, in one synchronous step each
        for client in clients:
            rounds.add(client, f"change {change}".encode())
    assert wire == [] and all(client.deferred == 5 for client in clients)  # nothing written in the step
    between: list[int] = []

    async def other_work() -> None:  # what the loop runs meanwhile: it sees rounds in progress
        while rounds.waiting:
            between.append(len(wire))
            await asyncio.sleep(0)

    await asyncio.gather(other_work(), until(lambda: rounds.waiting == 0, what="every round"))
    assert rounds.rounds == 3 and between == [10, 20]  # 10, 10, then 5: other work ran between the rounds
    assert all(client.deferred == 0 for client in clients)
    for client in clients:
        assert [frame for name, frame in wire if name == client.name] == [f"change {n}".encode() for n in range(5)]
