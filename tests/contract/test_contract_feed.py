"""The change feed's rules (``domain/source.py``), over every source: marks, commit order, and
``HistoryLost`` for a position the source cannot continue from."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import pytest
from contract_sources import Subject, subject

from orders_live.domain.change import CaughtUp, Change, HistoryLost
from orders_live.domain.source import PositionAhead
from orders_live.domain.subscription import SubscriptionFilter

__all__ = ["subject"]

FIRST_MARK = 10.0  # seconds: the first mark (a fresh stream on a loaded machine)
NEXT_MARK = 5.0  # seconds: a second mark, without a write (nx-27017's awaitData is 1 s; PostgreSQL polls every 2 s)
EVERY_ORDER = SubscriptionFilter("all")
FOREIGN = ["m:3", "nx:3", "pg:3", "pg:3.1", "8263A1B2C3000000012B0429", "", "nx:", "pg:", "m:", "{'$gt': 1}"]


async def next_item(changes: AsyncGenerator[Change | CaughtUp, None], within: float) -> Change | CaughtUp:
    async with asyncio.timeout(within):
        return await anext(changes)


async def read_on(stream: AsyncGenerator[Change | CaughtUp, None]) -> None:
    """Read a stream until it raises (or a read takes too long)."""
    async with contextlib.aclosing(stream) as changes:
        while True:
            await next_item(changes, FIRST_MARK)


async def first_mark(changes: AsyncGenerator[Change | CaughtUp, None]) -> CaughtUp:
    item = await next_item(changes, FIRST_MARK)
    assert isinstance(item, CaughtUp), f"a stream from now starts with a mark, not {item!r}"
    return item


async def test_a_second_mark_follows_the_first_without_a_write(subject: Subject) -> None:
    """The follower seeds on the first item and trusts only a mark read after its seed."""
    async with contextlib.aclosing(subject.source.feed.watch(None)) as changes:
        mark = await first_mark(changes)
        second = await next_item(changes, NEXT_MARK)
        assert isinstance(second, CaughtUp)
        assert second.position == mark.position  # nothing was written: the same place


async def test_changes_come_in_commit_order_and_a_mark_covers_each_one_before_it(subject: Subject) -> None:
    feed = subject.source.feed
    await subject.write()  # not from the log's very start, which nx-27017 cannot prove continuity from
    async with contextlib.aclosing(feed.watch(None)) as changes:
        start = await first_mark(changes)
        ids = await subject.write(5)
        seen: list[Change] = []
        while True:
            item = await next_item(changes, FIRST_MARK)
            if isinstance(item, Change):
                seen.append(item)
            elif len(seen) == len(ids):
                break
        assert [c.id for c in seen] == ids
        keys = [feed.position_key(p) for p in [start.position, *(c.position for c in seen), item.position]]
        assert None not in keys
        assert keys[1:-1] == sorted(keys[1:-1]) and len(set(keys[1:-1])) == len(ids)  # type: ignore[type-var]
        assert keys[0] < keys[1] and keys[-2] <= keys[-1]  # type: ignore[operator]
    # From a position, the same changes again, in the same order.
    async with contextlib.aclosing(feed.watch(start.position)) as again:
        replay = [await next_item(again, FIRST_MARK) for _ in ids]
    assert [(c.id, c.position) for c in replay] == [(c.id, c.position) for c in seen]


async def test_changes_between_two_positions_are_those_the_feed_gave_in_its_order(subject: Subject) -> None:
    feed = subject.source.feed
    await subject.write()  # (as above)
    async with contextlib.aclosing(feed.watch(None)) as changes:
        start = await first_mark(changes)
        ids = await subject.write(4)
        seen = []
        while len(seen) < len(ids):
            item = await next_item(changes, FIRST_MARK)
            if isinstance(item, Change):
                seen.append(item)
    between = await feed.changes_between(start.position, seen[-1].position, EVERY_ORDER, 100)
    assert [(c.id, c.position) for c in between] == [(c.id, c.position) for c in seen]


async def test_a_position_another_source_made_is_history_lost(subject: Subject) -> None:
    feed = subject.source.feed
    async with contextlib.aclosing(feed.watch(None)) as changes:
        own = await first_mark(changes)
    foreign = [p for p in FOREIGN if feed.position_key(p) is None]
    assert len(foreign) >= len(FOREIGN) - 2, "a source takes one kind of position"
    for position in foreign:
        with pytest.raises(HistoryLost):
            await feed.check_position(position)
        with pytest.raises(HistoryLost):
            await feed.changes_between(position, own.position, EVERY_ORDER, 100)
        with pytest.raises(HistoryLost):
            async with contextlib.aclosing(feed.watch(position)) as changes:
                await next_item(changes, FIRST_MARK)


async def test_a_position_the_log_no_longer_holds_is_history_lost(subject: Subject) -> None:
    feed = subject.source.feed
    async with contextlib.aclosing(feed.watch(None)) as changes:
        await first_mark(changes)
        await subject.write(2)
        item = await next_item(changes, FIRST_MARK)
        assert isinstance(item, Change)
    await subject.forget()
    await subject.write(1)
    with pytest.raises(HistoryLost):
        await read_on(feed.watch(item.position))


async def test_a_position_past_the_end_of_the_log_is_refused(subject: Subject) -> None:
    """The log was cut back (a database restored or recreated): a position past its end is
    PositionAhead when checked, and HistoryLost when a stream would resume from it."""
    feed = subject.source.feed
    async with contextlib.aclosing(feed.watch(None)) as changes:
        await first_mark(changes)
        await subject.write(1)
        assert isinstance(await next_item(changes, FIRST_MARK), Change)
    # (PostgreSQL's WAL feed numbers commits by their log position: far past any count)
    ahead = {"memory": "m:1000001", "nx": "nx:1000001", "pg": "pg:100000000000000001"}[subject.kind]
    assert feed.position_key(ahead) is not None
    with pytest.raises(PositionAhead):
        await feed.check_position(ahead)
    with pytest.raises(HistoryLost):
        await read_on(feed.watch(ahead))
