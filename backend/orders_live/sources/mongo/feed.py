"""The change stream: one ``watch`` per reader, positions, and the proof of continuity."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncGenerator
from typing import Any

from pymongo.errors import OperationFailure

from orders_live.domain.change import CaughtUp, Change, HistoryLost, StreamInvalidated
from orders_live.domain.source import DatabaseUnavailable, PositionAhead, PositionKey, TooManyChanges
from orders_live.domain.subscription import SubscriptionFilter
from orders_live.sources.mongo.connection import MongoConnection
from orders_live.sources.mongo.documents import INVALIDATING_OPS, change_from_event, order_from_document, parse_id

log = logging.getLogger(__name__)

_MONGO_TOKEN = re.compile(r"[0-9A-Fa-f]{2,4096}")
_NX_TOKEN = re.compile(r"nx:(\d{1,18})")
# Error codes after which a resume token can never be used again.
_HISTORY_LOST_CODES = frozenset({286, 280, 136})
AWAIT_MS = 1000


class MongoChangeFeed:
    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection
        self.pacer = connection.pacer

    async def watch(self, resume_after: str | None) -> AsyncGenerator[Change | CaughtUp, None]:
        token, must_see_first = self._resume_point(resume_after)
        async with (
            self.connection.answering() as db,
            contextlib.aclosing(self._stream(db, token, must_see_first)) as items,
        ):
            async for item in items:
                yield item

    async def _stream(
        self, db: MongoConnection, token: dict[str, str] | None, must_see_first: str | None
    ) -> AsyncGenerator[Change | CaughtUp, None]:
        try:
            async with await db.orders.watch(
                resume_after=token, max_await_time_ms=AWAIT_MS, **self.connection.watch_options
            ) as stream:
                if must_see_first is not None:
                    first = await stream.try_next()
                    if first is None or first["_id"].get("_data") != must_see_first:
                        raise HistoryLost(f"the change log no longer holds {must_see_first!r}")
                while True:
                    started = time.monotonic()
                    event = await stream.try_next()
                    if event is None and not stream.alive:
                        # The server ended the cursor without an error (nx-27017 does when the
                        # connection that opened it closes, answering a getMore with cursor id 0);
                        # PyMongo then stops asking. Reopen from our position, proving continuity.
                        raise DatabaseUnavailable("the server closed the change stream's cursor")
                    if event is None:
                        mark = stream.resume_token
                        if mark is not None:
                            yield CaughtUp(str(mark["_data"]))
                        if time.monotonic() - started < AWAIT_MS / 2000:
                            await self.pacer.pause()
                        continue
                    self.pacer.reset()
                    change = await self._change(event)
                    if change is not None:
                        yield change
        except OperationFailure as exc:
            if exc.code in _HISTORY_LOST_CODES:
                raise HistoryLost(str(exc)) from exc
            raise

    async def check_position(self, position: str) -> None:
        """Against the head (a new stream's first resume token). The horizon is proven when a
        read starts (``watch``), with one event: neither server tells it otherwise."""
        key = self.position_key(position)
        if key is None:
            raise HistoryLost(f"not a position of this database: {position!r}")
        async with self.connection.answering() as db, await db.orders.watch(**db.watch_options) as probe:
            token = probe.resume_token
        head = self.position_key(str(token["_data"])) if token is not None else None
        if head is not None and key > head:
            raise PositionAhead(f"position {position!r} is ahead of this database's change stream")

    async def changes_between(self, after: str, upto: str, wanted: SubscriptionFilter, budget: int) -> list[Change]:
        """Read through the change stream and filtered here: nx-27017 answers a change stream
        with a ``$match`` stage with no events at all, so the filter cannot go into the
        pipeline. On nx-27017 the budget is checked first (its positions count the
        collection's changes); on MongoDB, the changes read are counted."""
        start, end = self._key(after), self._key(upto)
        if start is None or end is None:
            raise HistoryLost(f"not positions of this database: {after!r}, {upto!r}")
        if start >= end:
            return []
        if self.connection.nx and end[0] - start[0] > budget:
            raise TooManyChanges(f"{end[0] - start[0]} changes between {after} and {upto}, more than {budget}")
        found: list[Change] = []
        read = 0
        async with contextlib.aclosing(self.watch(after)) as changes:
            async for item in changes:
                key = self.position_key(item.position)
                if isinstance(item, CaughtUp) or key is None:
                    if key is not None and key >= end:
                        break
                    continue
                if key > end:
                    break
                read += 1
                if read > budget:
                    raise TooManyChanges(f"more than {budget} changes between {after} and {upto}")
                if wanted.may_concern(item):
                    found.append(item)
                if key == end:
                    break
        return found

    def _resume_point(self, resume_after: str | None) -> tuple[dict[str, str] | None, str | None]:
        """The token to resume after, and the event that must come first to prove continuity.

        nx-27017 silently accepts a token it no longer holds, so we resume one row
        earlier and insist on seeing the row itself again: if it was pruned, history
        was lost. MongoDB raises ChangeStreamHistoryLost by itself.
        """
        if resume_after is None:
            return None, None
        if self.position_key(resume_after) is None:
            raise HistoryLost(f"not a position of this database: {resume_after!r}")
        nx = _NX_TOKEN.fullmatch(resume_after)
        if nx is not None:
            row = int(nx.group(1))
            if row == 0:  # "before anything": nothing to see again, so nothing proves it
                raise HistoryLost("continuity from the start of nx-27017's change log cannot be proven")
            return {"_data": f"nx:{row - 1}"}, resume_after
        return {"_data": resume_after}, None

    async def _change(self, event: dict[str, Any]) -> Change | None:
        op = event.get("operationType", "")
        if op in INVALIDATING_OPS:
            raise StreamInvalidated(f"the orders collection saw {op!r}")
        position = str(event["_id"]["_data"])
        try:
            change = change_from_event(event, position)
            if change is None and op in ("update", "replace"):
                # The post-image is gone: fall back to the order as it is now.
                found = await self.connection.orders.find_one({"_id": parse_id(event["documentKey"]["_id"])})
                if found is not None:
                    current = order_from_document(found)
                    lookup = {**event, "fullDocument": {**current.to_json(), "_id": current.id}}
                    change = change_from_event(lookup, position)
            return change
        except (KeyError, ValueError, TypeError) as exc:
            log.error("skipping change %s: not an order (%s)", position, exc)
            return None

    def position_key(self, position: str) -> PositionKey | None:
        return self._key(position)

    def _key(self, position: str) -> tuple[int, str] | None:
        """Positions of the kind this server hands out, as (nx-27017's row, MongoDB's token);
        a position of the other kind is not one (nx-27017 would take a MongoDB token silently
        and start from now)."""
        nx = _NX_TOKEN.fullmatch(position)
        if nx is not None and self.connection.nx is not False:
            return (int(nx.group(1)), "")
        if nx is None and self.connection.nx is not True and _MONGO_TOKEN.fullmatch(position):
            return (0, position.upper())
        return None
