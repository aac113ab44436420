"""Identities and scopes (JWT mode), proven end to end on both databases.

Three customers (Ada, Bo, Cy), a fourth with no connection (Dee), a viewer, staff and the agent.
Every path a reader has (Socket.IO subscriptions and their snapshot pages, acks, ``order_change``
and ``order_changes`` frames; SSE streams through tickets; polling; catch-up with ``since``; REST
list pages; the agent action log and its stream) is checked frame by frame against a model of the
writes the tests make: a customer's connection receives exactly the changes of its own orders
(an order moved away from it arrives once, as a delete, at the move's position; one moved to it
arrives once, as the update), with its own counts, and each view built from the frames equals
the database's orders of that customer. Refusals are clear 4xx answers or error acks, and
nothing is logged at ERROR level or with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio

from conftest import database_orders, opened, running_service, settings_for, sse_events, until
from orders_live.domain.order import STATUSES, OrderCreate, OrderPatch
from orders_live.domain.source import Source
from orders_live.identity.minting import mint_token
from orders_live.service import Service
from orders_live.settings import Settings

pytestmark = [pytest.mark.database]

SECRET = "scopes-test-secret-0123456789abcdef-0123456789"
CUSTOMERS = ("Ada", "Bo", "Cy")
ABSENT = "Dee"  # a customer no connection stands for
READERS = (*CUSTOMERS, "viewer")
WAIT = 15.0  # seconds a condition may take before a test fails

Order = dict[str, Any]
Frame = tuple[str, Any]


def scope_settings(url: str, **overrides: Any) -> Settings:
    """JWT mode; the write rate out of the way of a workload made as fast as it can go."""
    return settings_for(url, jwt_secret=SECRET, write_rate=10_000.0, **overrides)


def token_of(who: str, ttl: float = 900.0, **extra: Any) -> str:
    """A token for a customer (by name) or for the viewer, staff or agent; each with a fixed sub."""
    if who in (*CUSTOMERS, ABSENT):
        return mint_token("customer", sub=f"customer:{who}", customer=who, ttl=ttl, secret=SECRET, extra=extra)
    role: Any = who  # viewer, staff or agent
    return mint_token(role, sub=f"{who}:1", ttl=ttl, secret=SECRET, extra=extra)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def scope_of(who: str) -> str | None:
    return who if who in (*CUSTOMERS, ABSENT) else None


def counts_of(orders: Iterable[Order], scope: str | None, status: str | None = None) -> dict[str, int]:
    """Orders per status of ``scope`` (every order for None): every status, or ``status``'s."""
    counts = dict.fromkeys(STATUSES, 0)
    for order in orders:
        if scope is None or order["customer_name"] == scope:
            counts[order["status"]] += 1
    return counts if status is None else {status: counts[status]}


def scoped(orders: dict[int, Order], scope: str | None, status: str | None = None) -> dict[int, Order]:
    return {
        order_id: order
        for order_id, order in orders.items()
        if (scope is None or order["customer_name"] == scope) and (status is None or order["status"] == status)
    }


def newest_first(orders: dict[int, Order]) -> list[int]:
    """The ids in the REST list's order: newest ``updated_at`` first, then higher id first."""
    return sorted(orders, key=lambda i: (orders[i]["updated_at"], i), reverse=True)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged at ERROR or above, and nothing with a traceback (each test captures
    the service's log from DEBUG up, every other logger's from WARNING up)."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info is not None]
    assert not bad, [f"{r.name} {r.levelname}: {r.getMessage()}" for r in bad]


# -- the writes, and what each reader must make of them ----------------------------------------


@dataclass(frozen=True)
class Write:
    """One committed write: the order before and after it, and every order right after it."""

    op: str  # insert, update, delete: as order_change says it
    id: int
    before: Order | None
    after: Order | None
    state: dict[int, Order]

    @property
    def key(self) -> tuple[int, int | None]:
        return self.id, None if self.after is None else self.after["version"]

    @property
    def moved(self) -> bool:
        return (
            self.before is not None
            and self.after is not None
            and self.before["customer_name"] != self.after["customer_name"]
        )


class Shop:
    """Writes orders (through REST as one identity or another, or straight into the database as
    another client would) and keeps the model: every order, and every write in commit order."""

    def __init__(self, service: Service, session: aiohttp.ClientSession, direct: Source) -> None:
        self.service, self.session, self.direct = service, session, direct
        self.orders: dict[int, Order] = {}
        self.writes: list[Write] = []
        self.ever: dict[str, set[int]] = {}  # the ids each customer held at some point

    def record(self, op: str, order_id: int, after: Order | None) -> Write:
        before = self.orders.get(order_id)
        if after is None:
            self.orders.pop(order_id)
        else:
            self.orders[order_id] = after
            self.ever.setdefault(after["customer_name"], set()).add(order_id)
        write = Write(op, order_id, before, after, dict(self.orders))
        self.writes.append(write)
        return write

    async def call(self, who: str, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        headers = {**bearer(token_of(who)), **headers}
        async with self.session.request(method, self.service.url + path, json=body, headers=headers) as response:
            answer = await response.json() if response.content_type == "application/json" else None
            return response.status, answer

    # through REST: answered once the change is in the feed
    async def create(self, who: str, customer: str, product: str, status: str = "pending") -> Order:
        body = {"customer_name": customer, "product_name": product, "status": status}
        code, order = await self.call(who, "POST", "/api/orders", body)
        assert code == 201, order
        self.record("insert", order["id"], order)
        return dict(order)

    async def patch(self, who: str, order_id: int, **fields: str) -> Order:
        code, order = await self.call(who, "PATCH", f"/api/orders/{order_id}", fields)
        assert code == 200, order
        self.record("update", order_id, order)
        return dict(order)

    async def delete(self, who: str, order_id: int) -> None:
        code, body = await self.call(who, "DELETE", f"/api/orders/{order_id}")
        assert code == 204, body
        self.record("delete", order_id, None)

    # straight into the database; ``wait`` False leaves the feed to catch up (a burst)
    async def direct_create(self, customer: str, product: str, status: str = "pending", wait: bool = True) -> Order:
        data = OrderCreate.model_validate({"customer_name": customer, "product_name": product, "status": status})
        order = (await self.direct.store.create(data)).to_json()
        self.record("insert", order["id"], dict(order))
        if wait:
            await self.applied()
        return dict(order)

    async def direct_patch(self, order_id: int, wait: bool = True, **fields: str) -> Order:
        order = (await self.direct.store.update(order_id, OrderPatch.model_validate(fields), None)).to_json()
        self.record("update", order_id, dict(order))
        if wait:
            await self.applied()
        return dict(order)

    async def direct_delete(self, order_id: int, wait: bool = True) -> None:
        await self.direct.store.delete(order_id, None)
        self.record("delete", order_id, None)
        if wait:
            await self.applied()

    async def bulk_patch(self, ids: list[int], viewer: SioReader, **fields: str) -> None:
        """One write of several orders by another client: one transaction on PostgreSQL, one
        ``update_many`` on nx-27017; so the feed reads the changes together (batches). Their
        commit order is the order the viewer (every order) receives them in."""
        connection: Any = self.direct.connection
        if hasattr(connection, "pool"):  # PostgreSQL: its triggers set version and updated_at
            async with connection.pool.acquire() as sql, sql.transaction():
                for order_id in ids:
                    await sql.execute(
                        "UPDATE orders SET customer_name = COALESCE($2, customer_name),"
                        " product_name = COALESCE($3, product_name) WHERE id = $1",
                        order_id,
                        fields.get("customer_name"),
                        fields.get("product_name"),
                    )
        else:
            update = {"$set": fields, "$currentDate": {"updated_at": True}, "$inc": {"version": 1}}
            result = await connection.orders.update_many({"_id": {"$in": ids}}, update)
            assert result.modified_count == len(ids)
        after = {order["id"]: order for order in await self.direct.store.fetch(ids)}
        keys = {(order_id, self.orders[order_id]["version"] + 1) for order_id in ids}
        assert {(i, o["version"]) for i, o in after.items()} == keys

        def received() -> list[int]:
            return [
                c["id"] for c in changes_in(viewer.frames) if c["order"] and (c["id"], c["order"]["version"]) in keys
            ]

        await until(lambda: len(received()) == len(ids), WAIT, "the viewer to receive the bulk write")
        for order_id in received():
            self.record("update", order_id, after[order_id])

    async def applied(self) -> None:
        """Until the service's feed has applied every write made so far."""
        hub = self.service.hub
        assert hub is not None
        for write in self.writes:
            order_id, version = write.key
            if write is self.last_write_of(order_id):
                assert await hub.applied(order_id, version, WAIT), f"the feed never applied {write.key}"

    def last_write_of(self, order_id: int) -> Write:
        return next(w for w in reversed(self.writes) if w.id == order_id)

    def seen_by(self, write: Write, scope: str | None, status: str | None) -> dict[str, Any] | None:
        """What a subscription of ``scope`` to ``status`` (None: every order) gets of ``write``:
        the change, its leave (an order that moved away from ``scope``), or nothing."""
        before, after = write.before, write.after
        if status is not None and not any(o is not None and o["status"] == status for o in (before, after)):
            return None  # none of the rooms it touches
        owner = (after or before or {})["customer_name"]
        if scope is None or scope == owner:
            return {"op": write.op, "id": write.id, "order": after}
        if before is not None and before["customer_name"] == scope:
            return {"op": "delete", "id": write.id, "order": None}
        return None

    def expected(
        self,
        writes: list[Write],
        scope: str | None,
        status: str | None,
        positions: dict[tuple[int, int | None], str] | None,
        counts: bool = True,
    ) -> list[dict[str, Any]]:
        """The changes a subscription gets of ``writes``, in commit order, as the frames carry
        them (without ``committed_at``): positions from ``positions``, counts of its scope."""
        found = []
        for write in writes:
            change = self.seen_by(write, scope, status)
            if change is None:
                continue
            if positions is not None:
                change["position"] = positions[write.key]
            if counts:
                change["counts"] = counts_of(write.state.values(), scope)
            found.append(change)
        return found


def plain(change: dict[str, Any]) -> dict[str, Any]:
    """A change as ``Shop.expected`` writes it: without ``committed_at``."""
    return {k: v for k, v in change.items() if k != "committed_at"}


# -- readers -------------------------------------------------------------------------------------


def changes_in(frames: list[Frame]) -> list[dict[str, Any]]:
    """Every change the frames carry, batches unpacked, in arrival order."""
    found = []
    for kind, payload in frames:
        if kind == "order_change":
            found.append(payload)
        elif kind == "order_changes":
            found.extend(payload["changes"])
    return found


CLOSING = ("ack", "caught_up", "resync")


def live_part(frames: list[Frame]) -> list[Frame]:
    """The frames after the first snapshot's or replay's closing frame (ack or caught_up)."""
    for index, (kind, _) in enumerate(frames):
        if kind in CLOSING:
            return frames[index + 1 :]
    raise AssertionError(f"no closing frame in {[kind for kind, _ in frames]}")


def build_view(frames: list[Frame], status: str | None, start: dict[int, Order] | None = None) -> dict[int, Order]:
    """The view a client builds (from ``start``, the view it held): snapshot pages (reset,
    upserts, removed), then changes, upsert by version (an order leaving a status view is
    dropped), a delete removes (an unknown id is ignored)."""
    view: dict[int, Order] = dict(start or {})

    def upsert(order: Order) -> None:
        held = view.get(order["id"])
        if held is not None and held["version"] >= order["version"]:
            return
        if status is None or order["status"] == status:
            view[order["id"]] = order
        else:
            view.pop(order["id"], None)

    for kind, payload in frames:
        if kind == "snapshot":
            if payload.get("reset"):
                view = {}
            for order in payload["orders"]:
                upsert(order)
            for order_id in payload.get("removed", []):
                view.pop(order_id, None)
        elif kind in ("order_change", "order_changes"):
            for change in changes_in([(kind, payload)]):
                if change["order"] is None:
                    view.pop(change["id"], None)
                else:
                    upsert(change["order"])
    return view


def last_position(frames: list[Frame]) -> str:
    position: str | None = None
    for kind, payload in frames:
        if kind in CLOSING:
            position = payload["position"]
        elif kind in ("order_change", "order_changes"):
            for change in changes_in([(kind, payload)]):
                position = change["position"]
    assert position is not None
    return position


def check_scope(frames: list[Frame], scope: str, status: str | None, ever: set[int], where: str) -> None:
    """Every frame on a customer's connection names only orders that were its own."""
    for kind, payload in frames:
        if kind == "snapshot":
            assert payload["filter"] == ({} if status is None else {"status": status}), where
            for order in payload["orders"]:
                assert order["customer_name"] == scope, f"{where}: another customer's order in a page: {order}"
                assert status is None or order["status"] == status, where
            assert set(payload.get("removed", [])) <= ever, f"{where}: removed {payload['removed']}"
        elif kind in ("order_change", "order_changes"):
            for change in changes_in([(kind, payload)]):
                if change["order"] is not None:
                    assert change["order"]["customer_name"] == scope, f"{where}: another customer's change {change}"
                else:
                    assert change["id"] in ever, f"{where}: a delete of an order {scope} never held: {change}"
        elif kind in CLOSING:
            assert payload.get("filter", {}) == ({} if status is None else {"status": status}), where
        else:
            raise AssertionError(f"{where}: an unexpected frame {kind}: {payload}")


class SioReader:
    """A Socket.IO client with a token that records every frame (acks included) in arrival order."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.frames: list[Frame] = []
        self.refusals: list[Any] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        for event in ("order_change", "order_changes", "snapshot", "resync", "token_expired", "token_revoked"):
            self.sio.on(event, self._recorder(event))
        self.sio.on("connect_error", self.refusals.append)
        self.sio.on("*", lambda event, *payload: self.frames.append((f"unexpected:{event}", payload)))

    def _recorder(self, event: str) -> Any:
        def record(payload: Any) -> None:
            self.frames.append((event, payload))

        return record

    async def connect(self) -> SioReader:
        await self.sio.connect(self.url, transports=["websocket"], auth={"token": self.token}, wait_timeout=5)
        return self

    async def subscribe(self, payload: Any) -> dict[str, Any]:
        """The ack, recorded where it arrived (after the pages or the replay it closes)."""
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def on_ack(answer: dict[str, Any]) -> None:
            self.frames.append(("ack", answer))
            answered.set_result(answer)

        await self.sio.emit("subscribe", payload, callback=on_ack)
        return await asyncio.wait_for(answered, WAIT)

    async def close(self) -> None:
        await self.sio.disconnect()


class SseReader:
    """An event stream opened through a stream ticket, recording (event, data) and the ids."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.token = session, url, token
        self.frames: list[Frame] = []
        self.ids: list[tuple[str, str | None]] = []
        self.task: asyncio.Task[None] | None = None
        self.response: aiohttp.ClientResponse | None = None

    async def open(
        self, query: str = "", last_event_id: str | None = None, path: str = "/api/changes/stream"
    ) -> SseReader:
        async with self.session.post(f"{self.url}/api/stream-tickets", headers=bearer(self.token)) as answer:
            assert answer.status == 201, await answer.text()
            ticket = (await answer.json())["ticket"]
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        query = f"{query}&ticket={ticket}" if query else f"?ticket={ticket}"
        self.response = await self.session.get(f"{self.url}{path}{query}", headers=headers)
        assert self.response.status == 200, await self.response.text()
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.response is not None
        async for event, event_id, data in sse_events(self.response):
            if event != "comment":
                self.frames.append((event, data))
                self.ids.append((event, event_id))

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.response is not None:
            self.response.close()


@dataclass
class Watcher:
    """One reader of one identity, for one filter, over one transport."""

    who: str
    status: str | None
    transport: str  # socketio or sse
    reader: SioReader | SseReader
    ack: dict[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> str | None:
        return scope_of(self.who)

    @property
    def name(self) -> str:
        return f"{self.who}/{self.status or 'all'}/{self.transport}"

    @property
    def frames(self) -> list[Frame]:
        return self.reader.frames


@contextlib.asynccontextmanager
async def open_shop(database_url: str, **overrides: Any) -> AsyncIterator[Shop]:
    """A service in JWT mode on ``database_url``, a session without read timeouts (streams stay
    open), and the database opened as another client would."""
    async with (
        running_service(scope_settings(database_url, **overrides)) as service,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as session,
        opened(database_url) as direct,
    ):
        yield Shop(service, session, direct)


async def list_all(shop: Shop, who: str, status: str | None = None, limit: int = 3) -> list[dict[str, Any]]:
    """Every REST list page of ``who``, following next_before."""
    pages: list[dict[str, Any]] = []
    before = None
    while True:
        query = f"?limit={limit}" + (f"&status={status}" if status else "") + (f"&before={before}" if before else "")
        code, page = await shop.call(who, "GET", f"/api/orders{query}")
        assert code == 200, page
        pages.append(page)
        before = page["next_before"]
        if before is None:
            return pages
        assert len(page["orders"]) == limit


# -- 1: the conformance test ---------------------------------------------------------------------


@pytest.mark.socketio
async def test_every_reader_gets_exactly_its_scope(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="orders_live")
    async with open_shop(database_url) as shop:
        service, session = shop.service, shop.session
        initial: dict[str, dict[str, Order]] = {}
        for customer in (*CUSTOMERS, ABSENT):
            initial[customer] = {
                name: await shop.create("staff", customer, f"{customer}'s {name}", status)
                for name, status in (("p1", "pending"), ("p2", "pending"), ("s", "shipped"), ("d", "delivered"))
            }
        ada, bo, cy, dee = (initial[c] for c in (*CUSTOMERS, ABSENT))

        watchers: list[Watcher] = []
        for who in READERS:
            for status in (None, "pending"):
                reader = await SioReader(service.url, token_of(who)).connect()
                watcher = Watcher(who, status, "socketio", reader)
                watcher.ack = await reader.subscribe({} if status is None else {"status": status})
                assert watcher.ack["ok"] is True, watcher.ack
                assert watcher.ack["counts"] == counts_of(shop.orders.values(), scope_of(who), status), watcher.name
                assert watcher.ack["snapshot"] == len(scoped(shop.orders, scope_of(who), status))
                watchers.append(watcher)
                sse = await SseReader(session, service.url, token_of(who)).open(f"?status={status}" if status else "")
                watchers.append(Watcher(who, status, "sse", sse))
        for watcher in watchers:
            if watcher.transport == "sse":
                await until(
                    lambda w=watcher: any(k == "caught_up" for k, _ in w.frames), WAIT, f"{watcher.name} caught up"
                )
                watcher.ack = next(p for k, p in watcher.frames if k == "caught_up")
                assert watcher.ack["counts"] == counts_of(shop.orders.values(), watcher.scope, watcher.status)
        polls: dict[str, str] = {}
        for who in READERS:
            code, page = await shop.call(who, "GET", "/api/orders?limit=1000")
            assert code == 200
            assert {o["id"]: o for o in page["orders"]} == scoped(shop.orders, scope_of(who))
            polls[who] = page["position"]
        start = len(shop.writes)

        # The workload, part one: REST writes by staff and by customers.
        ada_new = await shop.create("staff", "Ada", "Ada's new lamp")
        bo_new = await shop.create("staff", "Bo", "Bo's new desk", "shipped")
        await shop.patch("staff", ada["p1"]["id"], status="shipped")
        await shop.patch("staff", bo["s"]["id"], product_name="Bo's renamed chair")
        await shop.patch("staff", ada["p2"]["id"], customer_name="Bo")  # Ada → Bo, pending
        await shop.patch("staff", bo["s"]["id"], customer_name=ABSENT)  # Bo → Dee, shipped
        await shop.patch("staff", dee["p1"]["id"], customer_name="Cy")  # Dee → Cy, pending
        ada_self = await shop.create("Ada", "Ada", "Ada's own kettle")
        await shop.patch("Ada", ada_self["id"], product_name="Ada's own teapot")
        await shop.patch("Bo", ada["p2"]["id"], product_name="Bo's lamp, once Ada's")
        await shop.delete("staff", cy["d"]["id"])
        await shop.patch("staff", ada_new["id"], status="delivered")

        middle = len(shop.writes)
        for who in READERS:  # a poll in the middle: exactly part one's changes of its scope
            code, answer = await shop.call(who, "GET", f"/api/changes?since={polls[who]}")
            assert code == 200, answer
            assert "resync" not in answer, answer
            want = shop.expected(shop.writes[start:middle], scope_of(who), None, None, counts=False)
            assert [{k: c[k] for k in ("op", "id", "order")} for c in answer["changes"]] == want, who
            assert answer["counts"] == counts_of(shop.orders.values(), scope_of(who)), who
            polls[who] = answer["position"]

        # Part two: another client writes straight into the database, then a burst, then staff.
        await shop.direct_create("Cy", "Cy's direct stool", "shipped")
        await shop.direct_patch(cy["p1"]["id"], customer_name="Ada", status="shipped")  # Cy → Ada, and ships
        await shop.direct_delete(dee["d"]["id"])
        await shop.direct_delete(ada["d"]["id"])
        await shop.direct_patch(ada["p2"]["id"], customer_name="Ada")  # back: Ada → Bo → Ada
        await shop.direct_create("Bo", "Bo's burst mug", wait=False)  # a burst: each order once
        await shop.direct_patch(cy["s"]["id"], product_name="Cy's renamed shelf", wait=False)
        await shop.direct_patch(cy["p2"]["id"], customer_name="Bo", wait=False)  # Cy → Bo
        await shop.direct_patch(bo["p1"]["id"], status="delivered", wait=False)
        await shop.direct_patch(dee["p2"]["id"], customer_name="Ada", wait=False)  # Dee → Ada
        await shop.direct_delete(bo["d"]["id"], wait=False)
        await shop.applied()
        await shop.patch("staff", bo_new["id"], customer_name="Cy")  # Bo → Cy
        await shop.delete("staff", bo_new["id"])  # then deleted: the delete is Cy's
        await shop.patch("Ada", cy["p1"]["id"], product_name="Ada's stool, once Cy's")
        viewer_all = next(w for w in watchers if w.who == "viewer" and w.status is None and w.transport == "socketio")
        assert isinstance(viewer_all.reader, SioReader)
        # One write of several orders: two of Ada's and one of Bo's go to Cy; then three renamed.
        ada_now = sorted(i for i, o in shop.orders.items() if o["customer_name"] == "Ada")
        bo_now = sorted(i for i, o in shop.orders.items() if o["customer_name"] == "Bo")
        await shop.bulk_patch([ada_now[0], ada_now[1], bo_now[0]], viewer_all.reader, customer_name="Cy")
        await shop.bulk_patch([ada_now[2], bo_now[1], ada_now[0]], viewer_all.reader, product_name="Bulk renamed")
        for customer in CUSTOMERS:  # fences: the last change every reader gets
            await shop.create("staff", customer, f"{customer}'s fence")
        end = len(shop.writes)
        assert sum(w.moved for w in shop.writes[start:end]) == 11

        # Every reader gets its changes; the viewer's say where each write is.
        total = len(shop.writes[start:end])
        await until(lambda: len(changes_in(live_part(viewer_all.frames))) >= total, WAIT, "the viewer's changes")
        positions = {
            (c["id"], c["order"]["version"] if c["order"] else None): c["position"]
            for c in changes_in(live_part(viewer_all.frames))
        }
        for watcher in watchers:
            want = shop.expected(shop.writes[start:end], watcher.scope, watcher.status, positions)
            await until(
                lambda w=watcher, n=len(want): len(changes_in(live_part(w.frames))) >= n,  # noqa: B008
                WAIT,
                f"{watcher.name}'s changes",
            )
            got = [plain(c) for c in changes_in(live_part(watcher.frames))]
            assert got == want, watcher.name

        stored = await database_orders(database_url)
        assert stored == shop.orders
        for watcher in watchers:
            scope, status, frames = watcher.scope, watcher.status, watcher.frames
            if scope is not None:
                check_scope(frames, scope, status, shop.ever[scope], watcher.name)
            assert [k for k, _ in frames if k.startswith("unexpected")] == [], watcher.name
            # Each view is exactly what the database holds for it.
            assert build_view(frames, status) == scoped(stored, scope, status), watcher.name
            # Exactly once: no change twice on one connection.
            seen = Counter((c["id"], c["position"]) for c in changes_in(frames))
            assert [key for key, n in seen.items() if n > 1] == [], watcher.name
            # The counts at the end are its scope's in the database.
            last = changes_in(frames)[-1]
            assert last["counts"] == counts_of(stored.values(), scope), watcher.name
            if watcher.transport == "sse":  # each change's id is its position
                ids = [event_id for kind, event_id in watcher.reader.ids if kind == "order_change"]  # type: ignore[union-attr]
                assert ids == [c["position"] for c in changes_in(frames)], watcher.name

        # Moves: the old owner's readers get one delete at the move's position, the new owner's one update.
        for write in shop.writes[start:end]:
            if not write.moved:
                continue
            assert write.before is not None and write.after is not None
            at = positions[write.key]
            for watcher in watchers:
                if watcher.status is not None:
                    continue
                here = [c for c in changes_in(watcher.frames) if c["id"] == write.id and c["position"] == at]
                if watcher.scope == write.before["customer_name"]:
                    assert [(c["op"], c["order"]) for c in here] == [("delete", None)], watcher.name
                elif watcher.scope in (write.after["customer_name"], None):
                    assert [(c["op"], c["order"]) for c in here] == [("update", write.after)], watcher.name
                else:
                    assert here == [], watcher.name

        # Polling: the rest of the writes, of its scope only; REST pages: exactly its orders.
        for who in READERS:
            code, answer = await shop.call(who, "GET", f"/api/changes?since={polls[who]}")
            assert code == 200, answer
            want = shop.expected(shop.writes[middle:end], scope_of(who), None, positions, counts=False)
            assert [plain(c) for c in answer["changes"]] == want, who
            assert answer["counts"] == counts_of(stored.values(), scope_of(who)), who
            for status in (None, *STATUSES):  # one page each (test_rest_pages_* follows next_before)
                code, page = await shop.call(
                    who, "GET", "/api/orders?limit=1000" + (f"&status={status}" if status else "")
                )
                assert code == 200, page
                held = scoped(stored, scope_of(who), status)
                assert [o["id"] for o in page["orders"]] == newest_first(held), (who, status)
                assert {o["id"]: o for o in page["orders"]} == held, (who, status)
                assert page["counts"] == counts_of(stored.values(), scope_of(who), status), (who, status)
                assert page["next_before"] is None

        # The writes of several orders at once came as order_changes batches (checked above as well).
        assert any(k == "order_changes" for w in watchers if w.scope for k, _ in w.frames)

        for watcher in watchers:
            await watcher.reader.close()
    no_tracebacks(caplog)


# -- 2: catch-up with since ----------------------------------------------------------------------


@pytest.mark.socketio
@pytest.mark.parametrize("history", ["memory", "stream"])
async def test_catch_up_replays_exactly_the_scope(
    database_url: str, history: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A customer away while its orders move: Socket.IO ``since``, SSE ``Last-Event-ID`` and
    polling replay exactly its changes (an order moved away as a delete). From memory (the
    default history) the replay is exact on both databases; with a small history the catch-up
    reads the change stream, which on nx-27017 cannot name an update's previous customer: there,
    a resync whose snapshot is exact is the other right answer, never a wrong view."""
    caplog.set_level(logging.DEBUG, logger="orders_live")
    overrides = {} if history == "memory" else {"history_size": 8}
    async with open_shop(database_url, **overrides) as shop:
        service, session = shop.service, shop.session
        ada = [
            await shop.create("staff", "Ada", f"Ada's {n}", s) for n, s in enumerate(("pending", "pending", "shipped"))
        ]
        bo = [await shop.create("staff", "Bo", f"Bo's {n}", s) for n, s in enumerate(("pending", "shipped"))]
        cy = await shop.create("staff", "Cy", "Cy's chair")

        readers: dict[str | None, SioReader] = {}
        for status in (None, "pending"):
            readers[status] = await SioReader(service.url, token_of("Ada")).connect()
            assert (await readers[status].subscribe({} if status is None else {"status": status}))["ok"]
        sse = await SseReader(session, service.url, token_of("Ada")).open()
        await until(lambda: any(k == "caught_up" for k, _ in sse.frames), WAIT, "the stream caught up")
        code, page = await shop.call("Ada", "GET", "/api/orders")
        assert code == 200
        since_poll = page["position"]
        await shop.patch("staff", ada[0]["id"], product_name="Ada's renamed 0")  # a live change each sees
        await until(lambda: len(changes_in(sse.frames)) == 1, WAIT, "the live change on the stream")
        await until(lambda: len(changes_in(readers[None].frames)) == 1, WAIT, "the live change on Socket.IO")
        await until(lambda: len(changes_in(readers["pending"].frames)) == 1, WAIT, "the live change, pending")
        views = {status: build_view(r.frames, status) for status, r in readers.items()}
        positions = {status: last_position(r.frames) for status, r in readers.items()}
        sse_view, sse_position = build_view(sse.frames, None), last_position(sse.frames)
        assert sse.ids[-1] == ("order_change", sse_position)
        for reader in readers.values():
            await reader.close()
        await sse.close()
        away = len(shop.writes)

        # While Ada is away: one of hers moves to Bo, one of Bo's to her, hers change otherwise too.
        await shop.patch("staff", ada[1]["id"], customer_name="Bo")  # away from Ada
        await shop.patch("staff", bo[0]["id"], customer_name="Ada")  # to Ada
        await shop.create("Ada", "Ada", "Ada's new one")
        await shop.patch("staff", ada[0]["id"], status="shipped")  # leaves her pending view
        await shop.direct_delete(ada[2]["id"])
        await shop.direct_patch(bo[1]["id"], customer_name="Ada", status="delivered")  # to Ada, delivered
        for n in range(10):  # others' changes, more than the small history holds
            await shop.direct_patch(cy["id"], product_name=f"Cy's {n}")
        back = shop.writes[away:]
        stored = await database_orders(database_url)
        assert stored == shop.orders
        exact_only = history == "memory" or database_url.startswith("postgresql")

        # Socket.IO, since the last position each had.
        for status in (None, "pending"):
            reader = await SioReader(service.url, token_of("Ada")).connect()
            payload: dict[str, Any] = {"since": positions[status]} | ({} if status is None else {"status": status})
            ack = await reader.subscribe(payload)
            assert ack["ok"] is True, ack
            assert ack["counts"] == counts_of(stored.values(), "Ada", status)
            check_scope(reader.frames, "Ada", status, shop.ever["Ada"], f"since/{status}")
            if "resync" in ack:
                assert not exact_only, ack
                assert ack["resync"] == "scope_unknown", ack
                assert build_view(reader.frames, status) == scoped(stored, "Ada", status)
            else:
                want = shop.expected(back, "Ada", status, None, counts=False)
                replay = changes_in(reader.frames)
                assert ack["replayed"] == len(replay) == len(want), (ack, replay)
                assert [{k: c[k] for k in ("op", "id", "order")} for c in replay] == want
                assert all("counts" not in c for c in replay)
                assert build_view(reader.frames, status, views[status]) == scoped(stored, "Ada", status)
                # The order that moved away leaves once, as a delete; the one that came arrives once.
                assert [(c["op"], c["order"]) for c in replay if c["id"] == ada[1]["id"]] == [("delete", None)]
                came = shop.writes[away + 1].after
                assert [(c["op"], c["order"]) for c in replay if c["id"] == bo[0]["id"]] == [("update", came)]
            await reader.close()

        # SSE, with Last-Event-ID.
        sse = await SseReader(session, service.url, token_of("Ada")).open(last_event_id=sse_position)
        await until(lambda: any(k in ("caught_up", "resync") for k, _ in sse.frames), WAIT, "the stream's catch-up")
        await sse.close()
        check_scope(sse.frames, "Ada", None, shop.ever["Ada"], "sse since")
        closing = next(p for k, p in sse.frames if k in ("caught_up", "resync"))
        assert closing["counts"] == counts_of(stored.values(), "Ada")
        if "reason" in closing:
            assert not exact_only, closing
            assert build_view(sse.frames, None) == scoped(stored, "Ada")
        else:
            want = shop.expected(back, "Ada", None, None, counts=False)
            replay = changes_in(sse.frames)
            assert closing["replayed"] == len(replay)
            assert [{k: c[k] for k in ("op", "id", "order")} for c in replay] == want
            assert build_view(sse.frames, None, sse_view) == scoped(stored, "Ada")

        # Polling, from the position of a REST page taken before Ada went away.
        code, answer = await shop.call("Ada", "GET", f"/api/changes?since={since_poll}")
        assert code == 200, answer
        assert answer["counts"] == counts_of(stored.values(), "Ada")
        if "resync" in answer:
            assert not exact_only, answer
            assert {o["id"]: o for o in answer["orders"]} == scoped(stored, "Ada")
        else:
            want = shop.expected(shop.writes[away - 1 :], "Ada", None, None, counts=False)
            assert [{k: c[k] for k in ("op", "id", "order")} for c in answer["changes"]] == want
    no_tracebacks(caplog)


# -- 3: REST pages and refusals -----------------------------------------------------------------


async def test_rest_pages_hold_exactly_ones_orders(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each identity's list pages (limit 2, following next_before), whole or by status, hold
    exactly the orders it may see, newest first, each once, with its own counts; after orders
    were updated (a status move, a rename, a move between customers), as a shop's would be."""
    caplog.set_level(logging.DEBUG, logger="orders_live")
    async with open_shop(database_url) as shop:
        _service, _session = shop.service, shop.session
        made = []
        for n in range(5):
            for customer in (*CUSTOMERS, ABSENT):
                made.append(await shop.create("staff", customer, f"{customer}'s {n}", STATUSES[n % 3]))
        await shop.patch("staff", made[0]["id"], status="shipped")
        await shop.patch("staff", made[1]["id"], customer_name="Ada")
        await shop.patch("Cy", made[2]["id"], product_name="Cy's renamed")
        for who in (*READERS, "staff", "agent"):
            for status in (None, *STATUSES):
                pages = await list_all(shop, who, status, limit=2)
                listed = [o for page in pages for o in page["orders"]]
                want = scoped(shop.orders, scope_of(who), status)
                assert [o["id"] for o in listed] == newest_first(want), (who, status)
                assert {o["id"]: o for o in listed} == want, (who, status)
                assert all(p["counts"] == counts_of(shop.orders.values(), scope_of(who), status) for p in pages)
    no_tracebacks(caplog)


async def test_rest_confines_each_identity(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="orders_live")
    async with open_shop(database_url) as shop:
        service, session = shop.service, shop.session
        ada = await shop.create("staff", "Ada", "Ada's lamp")
        bo = await shop.create("staff", "Bo", "Bo's desk", "shipped")
        for n in range(4):
            await shop.create("staff", "Ada", f"Ada's {n}", STATUSES[n % 3])
            await shop.create("staff", "Cy", f"Cy's {n}")
        missing = max(shop.orders) + 1000

        # Reads: another's order is as missing as one that does not exist.
        code, body = await shop.call("Ada", "GET", f"/api/orders/{ada['id']}")
        assert (code, body) == (200, ada)
        code, other = await shop.call("Ada", "GET", f"/api/orders/{bo['id']}")
        code_missing, absent = await shop.call("Ada", "GET", f"/api/orders/{missing}")
        assert code == code_missing == 404
        assert other == {"error": {"code": "not_found", "message": f"order {bo['id']} does not exist", "fields": {}}}
        assert absent == {"error": {"code": "not_found", "message": f"order {missing} does not exist", "fields": {}}}
        for who in ("viewer", "staff", "agent"):
            assert (await shop.call(who, "GET", f"/api/orders/{bo['id']}")) == (200, bo)

        # Writes a customer may not make.
        refusals: list[tuple[str, str, str, Any, int, str, dict[str, str] | None]] = [
            ("Ada", "PATCH", f"/api/orders/{bo['id']}", {"product_name": "mine now"}, 404, "not_found", {}),
            ("Ada", "PATCH", f"/api/orders/{missing}", {"product_name": "mine now"}, 404, "not_found", {}),
            ("Ada", "PATCH", f"/api/orders/{bo['id']}", {"customer_name": "Ada"}, 404, "not_found", {}),
            ("Ada", "PATCH", f"/api/orders/{ada['id']}", {"status": "shipped"}, 403, "forbidden", {"status": ""}),
            ("Ada", "PATCH", f"/api/orders/{bo['id']}", {"status": "shipped"}, 403, "forbidden", {"status": ""}),
            (
                "Ada",
                "PATCH",
                f"/api/orders/{ada['id']}",
                {"customer_name": "Bo"},
                403,
                "forbidden",
                {"customer_name": ""},
            ),
            ("Ada", "DELETE", f"/api/orders/{ada['id']}", None, 403, "forbidden", None),
            ("Ada", "DELETE", f"/api/orders/{bo['id']}", None, 403, "forbidden", None),
            (
                "Ada",
                "POST",
                "/api/orders",
                {"customer_name": "Bo", "product_name": "x"},
                403,
                "forbidden",
                {"customer_name": ""},
            ),
            (
                "Ada",
                "POST",
                "/api/orders",
                {"customer_name": "Ada", "product_name": "x", "status": "shipped"},
                403,
                "forbidden",
                {"status": ""},
            ),
            ("viewer", "POST", "/api/orders", {"customer_name": "Ada", "product_name": "x"}, 403, "forbidden", None),
            ("viewer", "PATCH", f"/api/orders/{ada['id']}", {"product_name": "x"}, 403, "forbidden", None),
            ("viewer", "DELETE", f"/api/orders/{ada['id']}", None, 403, "forbidden", None),
            ("agent", "POST", "/api/orders", {"customer_name": "Ada", "product_name": "x"}, 403, "forbidden", None),
            ("agent", "PATCH", f"/api/orders/{ada['id']}", {"product_name": "x"}, 403, "forbidden", None),
            ("agent", "DELETE", f"/api/orders/{ada['id']}", None, 403, "forbidden", None),
        ]
        for who, method, path, body, status, code_name, fields in refusals:
            code, answer = await shop.call(who, method, path, body)
            what = f"{who} {method} {path} {body}"
            assert code == status, (what, answer)
            assert answer["error"]["code"] == code_name, (what, answer)
            assert answer["error"]["message"], what
            if fields is not None:
                assert set(answer["error"]["fields"]) == set(fields), (what, answer)
                assert all(answer["error"]["fields"].values()), (what, answer)
        assert (await database_orders(database_url)) == shop.orders  # nothing of it was written

        # A 409 never shows another customer's order: a stale If-Match on Bo's is still a 404.
        code, answer = await shop.call(
            "Ada", "PATCH", f"/api/orders/{bo['id']}", {"product_name": "x"}, **{"If-Match": "7"}
        )
        assert (code, answer["error"]["code"]) == (404, "not_found"), answer
        assert "order" not in answer
        code, answer = await shop.call(
            "Ada", "PATCH", f"/api/orders/{ada['id']}", {"product_name": "x"}, **{"If-Match": "7"}
        )
        assert (code, answer["error"]["code"], answer["order"]["id"]) == (409, "version_conflict", ada["id"])

        # What a customer may do: create its own pending orders, rename its own.
        mine = await shop.create("Ada", "Ada", "Ada's own")
        assert mine["customer_name"] == "Ada" and mine["status"] == "pending"
        await shop.patch("Ada", mine["id"], product_name="Ada's own, renamed")
        await shop.patch("Ada", mine["id"], customer_name="Ada", product_name="Ada's own, again")

        # No token, a bad one, an expired one: 401 with a sentence; an unknown role: 403.
        now = int(time.time())
        for token, status, message in (
            (None, 401, "a token is required"),
            ("not-a-jwt", 401, "the token is not a JWT"),
            (token_of("Ada", exp=now - 60), 401, "the token has expired"),
            (
                mint_token("viewer", ttl=60, secret="another-secret-0123456789abcdef-012345"),
                401,
                "the token's signature does not verify",
            ),
            (
                token_of("viewer", role="admin"),
                403,
                "the token's role 'admin' is not one of viewer, customer, staff, agent",
            ),
            (mint_token("customer", customer="x", ttl=60, secret=SECRET, extra={"customer": None}), 403, None),
        ):
            for method, path in (
                ("GET", "/api/orders"),
                ("POST", "/api/stream-tickets"),
                ("GET", "/api/changes/stream"),
            ):
                async with session.request(method, service.url + path, headers=bearer(token)) as response:
                    answer = await response.json()
                    assert response.status == status, (token, path, answer)
                    assert answer["error"]["code"] == ("unauthorized" if status == 401 else "forbidden")
                    assert message is None or answer["error"]["message"] == message, answer

        # A stream ticket is good once.
        code, ticket = await shop.call("Ada", "POST", "/api/stream-tickets")
        assert code == 201 and ticket["expires_in"] == 30
        async with session.get(f"{service.url}/api/changes/stream?ticket={ticket['ticket']}") as first:
            assert first.status == 200
        async with session.get(f"{service.url}/api/changes/stream?ticket={ticket['ticket']}") as second:
            assert second.status == 401
            refused = (await second.json())["error"]
            assert refused["code"] == "unauthorized"
            assert refused["message"].startswith("the stream ticket was already used"), refused
    no_tracebacks(caplog)


# -- 4: Socket.IO refusals -----------------------------------------------------------------------


@pytest.mark.socketio
async def test_socketio_refuses_clearly(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="orders_live")
    async with open_shop(database_url) as shop:
        service, _session = shop.service, shop.session
        ada = await shop.create("staff", "Ada", "Ada's lamp")
        bo = await shop.create("staff", "Bo", "Bo's desk")

        # Connections refused: the reason in connect_error, and no connection.
        now = int(time.time())
        for token, code, message in (
            (None, "unauthorized", "a token is required"),
            (token_of("Ada", exp=now - 30), "unauthorized", "the token has expired"),
            ("a.b.c", "unauthorized", None),
            (
                token_of("viewer", role="admin"),
                "forbidden",
                "the token's role 'admin' is not one of viewer, customer, staff, agent",
            ),
        ):
            client = socketio.AsyncClient(reconnection=False)
            refusals: list[Any] = []
            client.on("connect_error", refusals.append)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(
                    service.url, transports=["websocket"], auth={"token": token} if token else None, wait_timeout=5
                )
            assert len(refusals) == 1, refusals
            assert refusals[0]["data"] == {"code": code}, refusals
            assert message is None or refusals[0]["message"] == message, refusals

        # Id subscriptions: one's own, one not yet existing, another's (forbidden).
        reader = await SioReader(service.url, token_of("Ada")).connect()
        own = await reader.subscribe({"id": ada["id"]})
        assert own["ok"] is True and own["snapshot"] == 1 and own["counts"] == {"pending": 1}
        other = await reader.subscribe({"id": bo["id"]})
        assert other == {
            "ok": False,
            "error": {"code": "forbidden", "message": f"order {bo['id']} is not yours", "fields": {}},
        }
        future = max(shop.orders) + 1
        ahead = await reader.subscribe({"id": future})
        assert ahead["ok"] is True and ahead["snapshot"] == 0 and ahead["counts"] == {}
        assert (await reader.subscribe({"id": "seven"}))["error"]["code"] == "invalid_filter"

        # The future id comes into being as Bo's: Ada's subscription to it hears nothing of it,
        # until it moves to her (the update), then away (a delete).
        created = await shop.create("staff", "Bo", "Bo's future order")
        assert created["id"] == future
        await shop.patch("staff", future, product_name="Bo's future order, renamed")
        await shop.patch("staff", future, customer_name="Ada")
        await shop.patch("staff", future, customer_name="Cy")
        await shop.patch("staff", ada["id"], product_name="Ada's lamp, renamed")  # a fence for the {"id"} views
        await until(lambda: len(changes_in(reader.frames)) >= 3, WAIT, "Ada's id subscriptions")
        got = [(c["op"], c["id"], c["order"]) for c in changes_in(reader.frames)]
        assert got == [
            ("update", future, shop.writes[-3].after),
            ("delete", future, None),
            ("update", ada["id"], shop.writes[-1].after),
        ]
        # Now Cy's: a new subscription to it is refused (and the old one heard only its leave).
        assert (await reader.subscribe({"id": future}))["error"]["code"] == "forbidden"
        await reader.close()

        # refresh_token: another holder's token is refused and the old one stays in force.
        reader = await SioReader(service.url, token_of("Ada")).connect()
        answer = await reader.sio.call("refresh_token", {"token": token_of("Bo")}, timeout=5)
        assert answer["ok"] is False and answer["error"]["code"] == "forbidden", answer
        answer = await reader.sio.call("refresh_token", {"token": token_of("Ada", ttl=1200)}, timeout=5)
        assert answer["ok"] is True, answer
        assert (await reader.subscribe({}))["counts"] == counts_of(shop.orders.values(), "Ada")
        await reader.close()
    no_tracebacks(caplog)


# -- 5: the agent action log ---------------------------------------------------------------------


def record(order_id: int | None, version: int | None = 1, kind: str = "action") -> dict[str, Any]:
    if order_id is None:
        return {"kind": "no_action", "trigger": "question", "reason": "nothing to do", "model": "offline-planner"}
    message = f"Your order #{order_id} has shipped."
    return {
        "kind": kind,
        "trigger": "shipped",
        "order_id": order_id,
        "order_version": version,
        "tool": "notify_customer",
        "arguments": {"order_id": order_id, "message": message},
        "message": message,
        "model": "offline-planner",
    }


async def test_the_action_log_is_scoped(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="orders_live")
    async with open_shop(database_url) as shop:
        service, session = shop.service, shop.session
        ada = await shop.create("staff", "Ada", "Ada's lamp", "shipped")
        bo = await shop.create("staff", "Bo", "Bo's desk", "shipped")
        ada_later = await shop.create("staff", "Ada", "Ada's kettle", "shipped")

        # Only the agent appends.
        for who in ("staff", "Ada", "viewer"):
            code, answer = await shop.call(who, "POST", "/api/agent/actions", record(ada["id"]))
            assert code == 403 and answer["error"]["code"] == "forbidden", (who, answer)
            assert answer["error"]["message"], answer
        appended = {}
        for name, order_id in (("ada", ada["id"]), ("bo", bo["id"]), ("none", None)):
            code, answer = await shop.call("agent", "POST", "/api/agent/actions", record(order_id))
            assert code == 201, answer
            appended[name] = answer
        assert [appended[n]["customer_name"] for n in ("ada", "bo", "none")] == ["Ada", "Bo", None]

        async def log_of(who: str, query: str = "?limit=500") -> list[dict[str, Any]]:
            code, answer = await shop.call(who, "GET", f"/api/agent/actions{query}")
            assert code == 200, answer
            return list(answer["actions"])

        everything = [appended[n] for n in ("ada", "bo", "none")]
        for who in ("viewer", "staff", "agent"):
            assert await log_of(who) == everything, who
        assert await log_of("Ada") == [appended["ada"]]
        assert await log_of("Bo") == [appended["bo"]]
        assert await log_of("Cy") == []
        assert await log_of("Ada", f"?order_id={bo['id']}") == []
        assert await log_of("Ada", f"?order_id={ada['id']}") == [appended["ada"]]
        assert await log_of("Ada", "?after=0") == [appended["ada"]]

        # The streams: Ada's holds only Ada's records, in the backlog and live.
        ada_stream = await SseReader(session, service.url, token_of("Ada")).open(path="/api/agent/actions/stream")
        viewer_stream = await SseReader(session, service.url, token_of("viewer")).open(path="/api/agent/actions/stream")
        for stream in (ada_stream, viewer_stream):
            await until(lambda s=stream: any(k == "caught_up" for k, _ in s.frames), WAIT, "the action stream")
        assert [p for k, p in ada_stream.frames if k == "action"] == [appended["ada"]]
        assert [p for k, p in viewer_stream.frames if k == "action"] == everything
        live = []
        for order_id in (bo["id"], None, ada["id"]):  # Ada's last: when it arrives, the others would have
            code, answer = await shop.call("agent", "POST", "/api/agent/actions", record(order_id, 2, "dry_run"))
            assert code == 201, answer
            live.append(answer)
        await until(
            lambda: len([k for k, _ in viewer_stream.frames if k == "action"]) == 6, WAIT, "the viewer's records"
        )
        await until(lambda: len([k for k, _ in ada_stream.frames if k == "action"]) == 2, WAIT, "Ada's live record")
        assert [p for k, p in ada_stream.frames if k == "action"] == [appended["ada"], live[2]]
        assert [p for k, p in viewer_stream.frames if k == "action"] == [*everything, *live]

        # A record keeps the customer of its order when it was appended, even after a move.
        await shop.patch("staff", ada["id"], customer_name="Bo")
        code, moved = await shop.call("agent", "POST", "/api/agent/actions", record(ada["id"], 2))
        assert code == 201 and moved["customer_name"] == "Bo"
        assert await log_of("Ada") == [appended["ada"], live[2]]
        assert await log_of("Bo") == [appended["bo"], live[0], moved]
        code, fence = await shop.call("agent", "POST", "/api/agent/actions", record(ada_later["id"]))
        assert code == 201 and fence["customer_name"] == "Ada"
        await until(lambda: len([k for k, _ in ada_stream.frames if k == "action"]) == 3, WAIT, "Ada's fence record")
        await ada_stream.close()
        await viewer_stream.close()
        assert [p for k, p in ada_stream.frames if k == "action"] == [appended["ada"], live[2], fence]
    no_tracebacks(caplog)
