"""The agent's action log over HTTP (``docs/agent.md``, "The action log over HTTP"):

- ``POST /api/agent/actions``: append a record (201), ``409 already_recorded`` with the
  existing ``record`` for a second ``action`` of the same trigger, order and version, ``422
  validation_failed`` with ``fields``; only the agent (an ``agent`` JWT, or the shared write
  token) appends. The service adds the order's customer (``customer_name``), from the feed.
  The log takes at most ``rate`` valid records a second from all writers together (a token
  bucket, bursts of twice that, at least 20): past it, ``429 rate_limited`` with
  ``Retry-After``, and nothing is stored. Its retention is ``action_retention``'s.
- ``GET /api/agent/actions``: ``{"actions": [...]}``, the newest ``limit``, or those
  ``after`` a seq, oldest first, filtered by ``kind``, ``trigger``, ``order_id``,
  ``order_version``.
- ``GET /api/agent/actions/stream``: Server-Sent Events: the backlog (the newest 50, or the
  records after ``Last-Event-ID``/``after``) as ``action`` events with ``id: <seq>``, then
  ``caught_up``, then every new record, through any instance (``action_tail``). It ends when its
  token does (``token_expired``, ``token_revoked``). Its response, pump, keep-alive and close
  are the orders stream's (``sse_stream``).

A customer reads only the records about its own orders (``ActionFilter.customer``), on every
read and on the stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from orders_live.domain.agent_action import (
    KINDS,
    TRIGGERS,
    ActionFilter,
    AgentActionJson,
    InvalidAgentAction,
    parse_new_action,
)
from orders_live.domain.order import MAX_ID, positive_int
from orders_live.domain.source import ActionLog, AlreadyRecorded
from orders_live.identity.limits import RateLimit
from orders_live.transports.access import ConnectionBudget
from orders_live.transports.http.access import identity_of
from orders_live.transports.http.action_tail import ActionStream, ActionTail
from orders_live.transports.http.errors import ApiError
from orders_live.transports.http.open_streams import OpenStreams, StreamEnding
from orders_live.transports.http.readiness import DatabaseGuard
from orders_live.transports.http.request_body import json_object
from orders_live.transports.http.sse_stream import EventStream, sse_event
from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.sessions import Sessions, open_sessions

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
STREAM_BACKLOG = 50  # records a stream starts with when it names no seq
FILTERS = ("kind", "trigger", "order_id", "order_version")


class AgentActionsApi:
    def __init__(
        self,
        actions: ActionLog,
        tail: ActionTail,
        database: DatabaseGuard,
        metrics: TransportMetrics,
        owner_of: Callable[[int], str | None],
        budget: ConnectionBudget | None = None,
        keepalive: float = 15.0,
        sessions: Sessions | None = None,
        rate: float = 20.0,
    ) -> None:
        self.actions, self.tail, self.database, self.metrics = actions, tail, database, metrics
        self.appends = RateLimit(rate, burst=max(20.0, 2 * rate))
        self.owner_of = owner_of  # an order's customer, as the feed has it now
        self.keepalive = keepalive
        self.open = OpenStreams(
            budget or ConnectionBudget(10_000), sessions if sessions is not None else open_sessions()
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/agent/actions", self.append),
            web.get("/api/agent/actions", self.list_actions),
            web.get("/api/agent/actions/stream", self.stream),
        ]

    @property
    def streams(self) -> int:
        return len(self.open)

    async def close(self) -> None:
        """End every open stream (their clients reconnect, elsewhere if need be)."""
        await self.open.close()

    async def append(self, request: web.Request) -> web.Response:
        identity_of(request).may_append_actions()
        _check_query(request.query, set())
        try:
            new = parse_new_action(await json_object(request))
        except InvalidAgentAction as exc:
            raise ApiError(422, "validation_failed", "the record has invalid fields", exc.fields) from None
        if not self.appends.allow():
            raise ApiError(
                429,
                "rate_limited",
                f"the action log takes at most {self.appends.rate:g} records a second",
                headers={"Retry-After": str(max(1, math.ceil(1 / self.appends.rate)))},
            )
        customer = self.owner_of(new.order_id) if new.order_id is not None else None
        try:
            async with self.database.bounded():
                record = await self.actions.append(new, customer)
        except AlreadyRecorded as exc:
            raise ApiError(409, "already_recorded", str(exc), extra={"record": exc.existing}) from None
        self.metrics.agent_actions.labels(record["kind"]).inc()
        self.tail.appended()
        return web.json_response(record, status=201)

    async def list_actions(self, request: web.Request) -> web.Response:
        query = request.query
        fields = _check_query(query, {"limit", "after", *FILTERS}, raise_now=False)
        filters = _filters(query, fields, identity_of(request).scope)
        limit = _number(query, "limit", 1, MAX_LIMIT, fields)
        after = _number(query, "after", 0, MAX_ID, fields)
        if fields:
            raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
        async with self.database.bounded():
            if after is None:
                records = await self.actions.recent(limit or DEFAULT_LIMIT, filters)
            else:
                records = await self.actions.after(after, limit or DEFAULT_LIMIT, filters)
        return web.json_response({"actions": records})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        fields = _check_query(query, {"after", "ticket", *FILTERS}, raise_now=False)
        identity = identity_of(request)
        filters = _filters(query, fields, identity.scope)
        header = request.headers.get("Last-Event-ID")
        if header:
            after = positive_int(header.strip()) if header.strip() != "0" else 0
            if after is None:
                fields["Last-Event-ID"] = "must be the id of an earlier action event (a seq)"
        else:
            after = _number(query, "after", 0, MAX_ID, fields)
        if fields:
            raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
        with self.open.holding(identity, request) as ending:
            async with self.database.bounded():
                live = await self.tail.join(filters)  # before the backlog: nothing falls between
            try:
                return await self._stream(request, live, filters, after, ending)
            finally:
                self.tail.leave(live)

    async def _stream(
        self,
        request: web.Request,
        live: ActionStream,
        filters: ActionFilter,
        after: int | None,
        ending: StreamEnding,
    ) -> web.StreamResponse:
        async with self.database.bounded():
            if after is None:
                backlog = await self.actions.recent(STREAM_BACKLOG, filters)
            else:
                backlog = await self.actions.after(after, MAX_LIMIT, filters)
        outbox = _ActionOutbox(live)
        stream = EventStream(request, outbox, self.keepalive, f"actions-{id(request):x}")
        outbox.overflowed = lambda: _fell_behind(stream, live.capacity)
        await stream.start()
        ending.then(lambda event, payload: outbox.end(stream, event, payload))
        try:
            sent = after or 0
            while True:  # a stream resuming far back reads the log a page at a time
                outbox.put_control(b"".join(_event(record) for record in backlog))
                sent = backlog[-1]["seq"] if backlog else sent
                if after is None or len(backlog) < MAX_LIMIT:
                    break
                async with self.database.bounded():
                    backlog = await self.actions.after(sent, MAX_LIMIT, filters)
            outbox.caught_up(sent)
            await stream.done()
        except asyncio.CancelledError:
            stream.cancelled()  # shutting down, or the client left: it reconnects
            raise
        except (ConnectionError, ApiError):
            log.debug("an agent action stream ended (client gone, or the database not answering)")
        finally:
            await stream.stop()
        return stream.response


class _ActionOutbox:
    """An action stream's outbox: the backlog and ``caught_up`` (control packets), then the live
    records the tail hands the stream (``ActionStream``, bounded), those after the backlog only.
    The tail's offer wakes the pump; a stream that falls more than ``capacity`` records behind
    ends (``overflowed``), and its EventSource reads the rest from the log."""

    def __init__(self, live: ActionStream) -> None:
        self.live = live
        self.control: list[bytes] = []
        self.sent: int | None = None  # the last seq sent, once caught up; live records wait until then
        self.overflowed: Callable[[], None] = lambda: None
        self.ending = False  # the token ended: its event is the last one written

    def end(self, stream: EventStream, event: str, payload: dict[str, Any]) -> None:
        self.ending = True
        stream.finish(sse_event(event, None, payload))

    def put_control(self, packet: bytes) -> None:
        self.control.append(packet)
        self.live.ready.set()

    def caught_up(self, sent: int) -> None:
        self.put_control(sse_event("caught_up", str(sent), {"seq": sent}))
        self.sent = sent

    @property
    def idle(self) -> bool:
        return not self.control and (self.sent is None or not self.live.pending)

    async def wait(self) -> None:
        await self.live.ready.wait()

    def take(self) -> list[bytes]:
        packets, self.control = self.control, []
        if self.sent is None or self.ending:  # live records wait until the backlog is out; none after the end
            self.live.ready.clear()
            return packets
        if self.live.overflowed:
            self.overflowed()
            return packets
        sent = self.sent
        fresh = [record for record in self.live.take() if record["seq"] > sent]
        if fresh:
            self.sent = fresh[-1]["seq"]
            packets.extend(_event(record) for record in fresh)
        return packets


def _fell_behind(stream: EventStream, capacity: int) -> None:
    if not stream.finishing:
        log.info("an agent action stream fell more than %d records behind; ending it", capacity)
        stream.finish()


def _event(record: AgentActionJson) -> bytes:
    return sse_event("action", str(record["seq"]), record)


def _check_query(query: MultiMapping[str], allowed: set[str], raise_now: bool = True) -> dict[str, str]:
    """Unknown and repeated parameters, by name (``token`` is the access middleware's)."""
    fields = {name: "unknown query parameter" for name in sorted(set(query) - allowed - {"token"})}
    for name in set(query) & allowed:
        if len(query.getall(name)) > 1:
            fields[name] = "given more than once"
    if fields and raise_now:
        raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
    return fields


def _number(query: Mapping[str, str], name: str, least: int, most: int, fields: dict[str, str]) -> int | None:
    text = query.get(name)
    if text is None:
        return None
    value = 0 if text == "0" else positive_int(text, most)
    if value is None or value < least:
        fields.setdefault(name, f"must be an integer from {least} to {most}")
    return value


def _filters(query: Mapping[str, str], fields: dict[str, str], customer: str | None) -> ActionFilter:
    kind, trigger = query.get("kind"), query.get("trigger")
    if kind is not None and kind not in KINDS:
        fields.setdefault("kind", f"must be one of {', '.join(KINDS)}")
    if trigger is not None and trigger not in TRIGGERS:
        fields.setdefault("trigger", f"must be one of {', '.join(TRIGGERS)}")
    order_id = _number(query, "order_id", 1, MAX_ID, fields)
    order_version = _number(query, "order_version", 1, MAX_ID, fields)
    if fields:
        return ActionFilter(customer=customer)
    return ActionFilter(
        kind=next((k for k in KINDS if k == kind), None),
        trigger=next((t for t in TRIGGERS if t == trigger), None),
        order_id=order_id,
        order_version=order_version,
        customer=customer,
    )
