"""``LiveOrders``: a Python client that keeps a live local copy of the orders for a filter.

It connects over Socket.IO (to one of several instances, in turn), subscribes (to the
newest ``limit`` orders and every change, when given a limit), applies the snapshot's
pages as they arrive, catches up from its last position after every reconnect
(``since``), replaces its view on ``resync``, ignores stale versions, keeps the server's
``counts``, and reconnects with growing, capped delays. Changes come out as an async
iterator, through callbacks, or both.

    async with LiveOrders("http://127.0.0.1:8080", status="pending") as live:
        async for event in live.events():
            print(event.kind, event.change or len(live.orders))

The token may be a string, a provider (a callable) or a ``TokenFile``: a provider's JWT is
refreshed on the live connection before it expires (``refresh_token``), and every reconnect
takes the provider's latest token, so that a client rejoining after its token ran out is live
again on every subscription, from its position.

Transient failures (a lost connection, a server that is full, starting or rate-limiting)
are retried. A refusal that retrying cannot change ends the client: a filter the server
refuses (``SubscribeRefused``), or a token that every instance refuses (``AccessRefused``).
So does any unexpected death of its connection task (``LiveOrdersDied``). The end is
noticed at once: ``failure`` holds it, ``state`` becomes ``closed``, and ``events()`` and
``wait_live()`` raise it instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

import aiohttp
import socketio

from orders_live.client.live_events import LiveEvent, LiveEvents
from orders_live.client.live_view import LiveView
from orders_live.client.refusals import AccessRefused, LiveOrdersDied, Refused, SubscribeRefused, refusal
from orders_live.client.token_refresh import keep_fresh
from orders_live.client.tokens import Tokens, TokenSource
from orders_live.domain.order import OrderJson
from orders_live.runtime.backoff import Backoff

__all__ = ["LiveEvent", "LiveOrders"]

log = logging.getLogger(__name__)

State = Literal["connecting", "catching_up", "live", "reconnecting", "closed"]
SUBSCRIBE_WAIT = 30.0  # seconds a subscribe may wait for its ack, or for the next snapshot page
MAX_MESSAGE = 4 * 1024 * 1024  # aiohttp's WebSocket message limit, told to the server, which pages below it


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
        token: TokenSource = None,
        limit: int | None = None,
    ) -> None:
        self.tokens = Tokens(token)
        self.limit = limit
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        wanted: dict[str, Any] = {"status": status} if status else {}
        if order_id is not None:
            wanted = {"id": order_id}
        self.view = LiveView(wanted)
        self.state: State = "connecting"
        self.replayed = 0  # changes replayed by the last catch-up
        self._events = LiveEvents(on_event)
        self.failure: Refused | LiveOrdersDied | None = None  # why the connection task ended, if not closed
        self._backoff = Backoff("connection to orders-live", log, first=reconnect_first, cap=reconnect_max)
        self._live = asyncio.Event()
        self._live_or_ended = asyncio.Event()
        self._failure_raised = False  # told to the caller by events(), wait_live() or close()
        self._task: asyncio.Task[None] | None = None
        self._sio: socketio.AsyncClient | None = None
        self._ack_bound: asyncio.Timeout | None = None  # the subscribe's wait, pushed back by each page

    @property
    def orders(self) -> dict[int, OrderJson]:
        return self.view.orders

    @property
    def position(self) -> str | None:
        return self.view.position

    @property
    def counts(self) -> dict[str, int]:
        """Orders per status matching the filter on the server (``orders`` may hold fewer)."""
        return self.view.counts

    async def __aenter__(self) -> LiveOrders:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        failure = await self._stop()
        if failure is not None and exc_type is None:
            raise failure  # nobody was told yet; never hides an exception already on its way out

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("this LiveOrders is already started")
        self.failure, self._failure_raised = None, False  # a fresh start after close()
        self._events.reopen()
        self._set_state("connecting")
        self._task = asyncio.create_task(self._run(), name="live-orders-connection")
        self._task.add_done_callback(self._connection_ended)

    async def wait_live(self, within: float = 10.0) -> None:
        """Until the view is live; raises ``failure`` if the connection task ended instead."""
        async with asyncio.timeout(within):
            await self._live_or_ended.wait()
        if self._events.ended:
            self._raise_failure()
            raise RuntimeError("this LiveOrders was closed before it went live")

    async def close(self) -> None:
        """Stop the connection task; raises its ``failure`` if nothing has raised it yet."""
        failure = await self._stop()
        if failure is not None:
            raise failure

    def events(self) -> AsyncIterator[LiveEvent]:
        """Every event from now on. Ends when the client is closed; raises ``failure``
        (after the events that came before it) if the connection task ended by itself."""
        return self._events.iterate(self._raise_failure)

    def _raise_failure(self) -> None:
        if self.failure is not None:
            self._failure_raised = True
            raise self.failure

    async def _stop(self) -> Refused | LiveOrdersDied | None:
        """Cancel the connection task and wait for it; the failure nobody was told about, if any."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # does nothing if it has already ended
            await asyncio.wait([task])  # never raises what ended it: that is ``failure``
        self.state = "closed"
        if self.failure is None or self._failure_raised:
            return None
        self._failure_raised = True
        return self.failure

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        """The connection task's done callback: whatever ended it is stored and told to every waiter."""
        if task.cancelled():
            failure: Refused | LiveOrdersDied | None = None  # closed
        elif isinstance(error := task.exception(), Refused):
            failure = error
            log.info("orders-live refused %s: %s (%s); not retrying", self.view.wanted, error, error.code)
        else:
            why = "it returned" if error is None else f"{type(error).__name__}: {error}"
            failure = LiveOrdersDied(f"the connection task {task.get_name()} died ({why})")
            failure.__cause__ = error
            log.error("the connection task %s died (%s)", task.get_name(), why, exc_info=error)
        self.failure = failure
        self._events.end()
        self._set_state("closed")

    # -- the connection ------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        refusing: set[str] = set()  # instances that refused the token since the last connection
        while True:
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            # handle_sigint=False: a library does not take over the process's Ctrl-C (the demo's agent is one
            # client in a serving process, which stops by its own handler).
            # Our own HTTP session, closed below: the library's own is left open when a cancel
            # (Ctrl-C) interrupts its disconnect.
            http = aiohttp.ClientSession()
            sio = socketio.AsyncClient(
                reconnection=False,
                handle_sigint=False,
                websocket_extra_options={"max_msg_size": MAX_MESSAGE},
                http_session=http,
            )
            self._sio = sio
            refusals: list[Any] = []

            async def connect_error(data: Any = None, refusals: list[Any] = refusals) -> None:
                refusals.append(data)  # the server's reason, before connect() raises

            sio.on("connect_error", connect_error)
            sio.on("order_change", self._on_change)
            sio.on("order_changes", self._on_changes)
            sio.on("resync", self._on_resync)
            sio.on("snapshot", self._on_snapshot)
            sio.on("token_expired", self._on_token_ended)
            sio.on("token_revoked", self._on_token_ended)
            refresher: asyncio.Task[None] | None = None
            token: str | None = None
            try:
                token = await self.tokens.get()
                auth: dict[str, Any] = {"max_message": MAX_MESSAGE}
                if token:
                    auth["token"] = token
                await sio.connect(url, transports=["websocket"], wait_timeout=5, auth=auth)
                refusing.clear()
                await self._subscribe(sio)
                self._backoff.reset()
                if not self.tokens.fixed:
                    refresher = asyncio.create_task(keep_fresh(sio, self.tokens, token), name="live-orders-refresh")
                await sio.wait()  # until the connection drops
                error: Exception = ConnectionError(f"lost the connection to {url}")
            except asyncio.CancelledError:
                raise
            except Refused:
                raise
            except Exception as exc:
                error = refusal(url, refusals) or exc
                if isinstance(error, AccessRefused) and not await self._newer_token(token):
                    refusing.add(url)
                    if refusing >= set(self.urls):
                        raise error from None
                    log.warning("%s refused the token (%s): %s; trying the other instances", url, error.code, error)
            finally:
                if refresher is not None:
                    refresher.cancel()
                    await asyncio.wait([refresher])
                try:
                    await _disconnect(sio)
                finally:
                    await http.close()
            self._set_state("reconnecting")
            await self._backoff.wait(error)

    async def _newer_token(self, refused: str | None) -> bool:
        """After a refusal: whether the provider now has another token to try."""
        if self.tokens.fixed:
            return False
        try:
            return await self.tokens.get() != refused
        except Exception:
            return False

    async def _on_token_ended(self, message: Any = None) -> None:
        """The server is about to end the connection: the reconnect takes a fresh token."""
        why = message.get("message") if isinstance(message, dict) else None
        log.info("the service ended the connection: %s", why or "the token ended")

    async def _subscribe(self, sio: socketio.AsyncClient) -> None:
        payload = dict(self.view.wanted)
        if self.limit is not None:
            payload["limit"] = self.limit
        if self.view.position is not None:
            payload["since"] = self.view.position
            self._set_state("catching_up")
        self.replayed = 0
        # A connection that drops while the ack is awaited ends the wait at once (its ack
        # will never come), rather than after the 30 s bound.
        waiting = True
        async with asyncio.timeout(SUBSCRIBE_WAIT) as bound:
            loop = asyncio.get_running_loop()
            self._ack_bound = bound

            async def dropped(*_: Any) -> None:
                if waiting:
                    bound.reschedule(loop.time())

            sio.on("disconnect", dropped)
            try:
                ack = await sio.call("subscribe", payload, timeout=None)
            finally:
                waiting = False
                self._ack_bound = None
        if not ack.get("ok"):
            error = ack.get("error", {})
            if error.get("code") == "invalid_filter":
                raise SubscribeRefused(str(error.get("message")), error.get("code"), error.get("fields"))
            raise ConnectionError(f"subscribe failed: {error}")
        self.view.end(ack["position"], ack.get("counts") or {})
        if "replayed" not in ack:
            reason = ack.get("resync")
            self._events.emit(LiveEvent("resync" if reason else "snapshot", reason=reason))
        self._set_state("live")

    def _set_state(self, state: State) -> None:
        self.state = state
        if state == "live":
            self._live.set()
        else:
            self._live.clear()
        if state == "live" or self._events.ended:
            self._live_or_ended.set()
        else:
            self._live_or_ended.clear()

    async def _on_change(self, change: dict[str, Any]) -> None:
        replaying = self.state == "catching_up"
        if replaying:
            self.replayed += 1
        before = self.view.orders.get(change["id"])
        if self.view.apply(change):
            self._events.emit(LiveEvent("change", change, replayed=replaying, before=before))

    async def _on_changes(self, batch: dict[str, Any]) -> None:
        for change in batch["changes"]:
            await self._on_change(change)

    async def _on_snapshot(self, page: dict[str, Any]) -> None:
        """One page of a snapshot (before the subscribe's ack, or before a ``resync``)."""
        if page.get("filter", self.view.wanted) != self.view.wanted:
            return
        if page.get("reset"):
            self.view.begin()
        self.view.add(page.get("orders") or [], page.get("removed") or [])
        if self._ack_bound is not None:
            self._ack_bound.reschedule(asyncio.get_running_loop().time() + SUBSCRIBE_WAIT)

    async def _on_resync(self, message: dict[str, Any]) -> None:
        """The end of a resync's pages."""
        if message.get("filter", self.view.wanted) != self.view.wanted:
            return
        self.view.end(message["position"], message.get("counts") or {})
        self._events.emit(LiveEvent("resync", reason=message["reason"]))


async def _disconnect(sio: socketio.AsyncClient) -> None:
    try:
        await sio.disconnect()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.debug("disconnecting after a failure failed too", exc_info=True)
