"""``LiveOrders``: a Python client that keeps a live local copy of the orders for a filter.

It connects over Socket.IO (to one of several instances, in turn), subscribes,
catches up from its last position after every reconnect (``since``), replaces its
view on ``resync``, ignores stale versions, and reconnects with growing, capped
delays. Changes come out as an async iterator, through callbacks, or both.

    async with LiveOrders("http://127.0.0.1:8080", status="pending") as live:
        async for event in live.events():
            print(event.kind, event.change or len(live.orders))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import socketio

from orders_live.client.live_view import LiveView
from orders_live.domain.order import OrderJson
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)

State = Literal["connecting", "catching_up", "live", "reconnecting", "closed"]
EVENTS_CAPACITY = 10_000


class SubscribeRefused(Exception):
    """The server refused the filter: retrying will not help."""


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """``change``: one applied change (``replayed`` during catch-up, ``conflated`` when
    the server merged changes for a slow client). ``snapshot``/``resync``: the view was
    replaced (``reason`` says why for a resync). ``dropped``: this iterator fell behind;
    read ``orders`` afresh."""

    kind: Literal["change", "snapshot", "resync", "dropped"]
    change: dict[str, Any] | None = None
    replayed: bool = False
    reason: str | None = None
    before: OrderJson | None = None  # the order as the view held it before the change


class LiveOrders:
    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        status: str | None = None,
        order_id: int | None = None,
        reconnect_first: float = 0.2,
        reconnect_max: float = 5.0,
        on_event: Callable[[LiveEvent], None] | None = None,
        token: str | None = None,
    ) -> None:
        self.token = token
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        wanted: dict[str, Any] = {"status": status} if status else {}
        if order_id is not None:
            wanted = {"id": order_id}
        self.view = LiveView(wanted)
        self.state: State = "connecting"
        self.replayed = 0  # changes replayed by the last catch-up
        self.on_event = on_event
        self._backoff = Backoff("connection to orders-live", log, first=reconnect_first, cap=reconnect_max)
        self._listeners: list[asyncio.Queue[LiveEvent]] = []
        self._live = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sio: socketio.AsyncClient | None = None

    @property
    def orders(self) -> dict[int, OrderJson]:
        return self.view.orders

    @property
    def position(self) -> str | None:
        return self.view.position

    async def __aenter__(self) -> LiveOrders:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-orders-connection")

    async def wait_live(self, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            await self._live.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.state = "closed"

    async def events(self) -> AsyncIterator[LiveEvent]:
        queue: asyncio.Queue[LiveEvent] = asyncio.Queue()
        self._listeners.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.remove(queue)

    # -- the connection ------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            sio = socketio.AsyncClient(reconnection=False)
            self._sio = sio
            sio.on("order_change", self._on_change)
            sio.on("order_changes", self._on_changes)
            sio.on("resync", self._on_resync)
            try:
                auth = {"token": self.token} if self.token else None
                await sio.connect(url, transports=["websocket"], wait_timeout=5, auth=auth)
                await self._subscribe(sio)
                self._backoff.reset()
                await sio.wait()  # until the connection drops
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                raise
            except SubscribeRefused:
                await sio.disconnect()
                raise
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                self._set_state("reconnecting")
                await self._backoff.wait(exc)
                continue
            self._set_state("reconnecting")
            await self._backoff.wait(ConnectionError(f"lost the connection to {url}"))

    async def _subscribe(self, sio: socketio.AsyncClient) -> None:
        payload = dict(self.view.wanted)
        if self.view.position is not None:
            payload["since"] = self.view.position
            self._set_state("catching_up")
        self.replayed = 0
        ack = await sio.call("subscribe", payload, timeout=30)
        if not ack.get("ok"):
            error = ack.get("error", {})
            if error.get("code") == "invalid_filter":
                raise SubscribeRefused(error.get("message"))
            raise ConnectionError(f"subscribe failed: {error}")
        if "orders" in ack:
            self.view.replace(ack["orders"], ack["position"])
            reason = ack.get("resync")
            self._emit(LiveEvent("resync" if reason else "snapshot", reason=reason))
        else:
            self.view.position = ack["position"]
        self._set_state("live")

    def _set_state(self, state: State) -> None:
        self.state = state
        if state == "live":
            self._live.set()
        else:
            self._live.clear()

    async def _on_change(self, change: dict[str, Any]) -> None:
        replaying = self.state == "catching_up"
        if replaying:
            self.replayed += 1
        before = self.view.orders.get(change["id"])
        if self.view.apply(change):
            self._emit(LiveEvent("change", change, replayed=replaying, before=before))

    async def _on_changes(self, batch: dict[str, Any]) -> None:
        for change in batch["changes"]:
            await self._on_change(change)

    async def _on_resync(self, message: dict[str, Any]) -> None:
        if message.get("filter", self.view.wanted) != self.view.wanted:
            return
        self.view.replace(message["orders"], message["position"])
        self._emit(LiveEvent("resync", reason=message["reason"]))

    def _emit(self, event: LiveEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("an on_event callback failed")
        for queue in self._listeners:
            if queue.qsize() >= EVENTS_CAPACITY:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(LiveEvent("dropped"))
            else:
                queue.put_nowait(event)
