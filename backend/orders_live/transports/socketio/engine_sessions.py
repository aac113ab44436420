"""Every Engine.IO session (one socket, WebSocket or long-polling), from its handshake to its close.

- Each holds a slot of the connection budget that SSE streams share, from its handshake on, so
  sockets that never connect count as much as connected ones. When the budget is full, up to
  ``TOLD_WHEN_FULL`` more sessions are let in without a slot, only to hear why: their Socket.IO
  connect is refused with ``too_many_connections`` (unless a slot has freed meanwhile). Past
  those the handshake itself is refused (Engine.IO answers 401
  ``{"code": "too_many_connections", "message": "the server is full"}``).
- A session with no accepted Socket.IO connect within ``auth_timeout`` seconds (from its
  handshake, or from its Socket.IO disconnect) is closed.
- A refused connect closes its session once the ``connect_error`` is on its way: the client
  hears why, then its socket closes (``show_out``).

Closing: Engine.IO's own disconnect (a CLOSE packet after what is queued, the connect_error
included), bounded by ``CLOSE_WITHIN``; a WebSocket still open ``ABORT_AFTER`` seconds later (a
client that reads nothing, or ignores the CLOSE) is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orders_live.transports.access import ConnectionBudget

log = logging.getLogger(__name__)

TOLD_WHEN_FULL = 32  # sessions at once past the budget, let in only to be told it is full
SHOW_OUT_GRACE = 0.5  # seconds a refused or timed-out client has to leave by itself
CLOSE_WITHIN = 1.0  # seconds Engine.IO's disconnect may take (a polling client must poll to hear it)
ABORT_AFTER = 1.0  # seconds after which a closed session's WebSocket is aborted if still open
FULL = "the server is full"

Disconnect = Callable[[str], Awaitable[None]]  # Engine.IO's disconnect of one session


@dataclass
class EngineSession:
    sid: str
    environ: dict[str, Any]
    slot: bool  # holds a slot of the budget (False: let in past it, to be told so)
    connected: bool = False  # a Socket.IO connect was accepted and is still on
    timer: asyncio.TimerHandle | None = None  # the auth timeout, while not connected

    @property
    def websocket(self) -> bool:
        return "transport=websocket" in self.environ.get("QUERY_STRING", "")


class EngineSessions:
    def __init__(self, budget: ConnectionBudget, auth_timeout: float, disconnect: Disconnect) -> None:
        self.budget, self.auth_timeout, self._disconnect = budget, auth_timeout, disconnect
        self._open: dict[str, EngineSession] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.timed_out = 0  # sessions closed for want of a connect

    def __len__(self) -> int:
        return len(self._open)

    # -- Engine.IO's events ------------------------------------------------------------
    def opened(self, sid: str, environ: dict[str, Any]) -> dict[str, str] | None:
        """A handshake: None to let it in, or why it is refused."""
        slot = self.budget.take()
        if not slot and sum(1 for s in self._open.values() if not s.slot) >= TOLD_WHEN_FULL:
            return {"code": "too_many_connections", "message": FULL}
        session = self._open[sid] = EngineSession(sid, environ, slot)
        self._arm(session)
        return None

    def closed(self, sid: str) -> None:
        session = self._open.pop(sid, None)
        if session is None:
            return
        if session.timer is not None:
            session.timer.cancel()
        if session.slot:
            self.budget.give_back()

    # -- Socket.IO's, through the gateway -------------------------------------------------
    def is_open(self, sid: str) -> bool:
        return sid in self._open

    def take_slot(self, sid: str) -> bool:
        """At a Socket.IO connect: whether the session holds a slot (taking one if it was let in
        past a full budget and one has freed since)."""
        session = self._open.get(sid)
        if session is None:
            return False
        if not session.slot:
            session.slot = self.budget.take()
        return session.slot

    def connected(self, sid: str) -> None:
        session = self._open.get(sid)
        if session is not None:
            session.connected = True
            if session.timer is not None:
                session.timer.cancel()
                session.timer = None

    def disconnected(self, sid: str) -> None:
        """Its Socket.IO connection ended and the socket stays: it has ``auth_timeout`` again."""
        session = self._open.get(sid)
        if session is not None and session.connected:
            session.connected = False
            self._arm(session)

    def show_out(self, sid: str) -> None:
        """Close the session soon: after what is queued for it (a connect_error) is on its way."""
        session = self._open.get(sid)
        if session is None:
            return
        task = asyncio.create_task(self._close(session), name=f"socketio.show_out.{sid}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        for session in self._open.values():
            if session.timer is not None:
                session.timer.cancel()
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- closing -----------------------------------------------------------------------
    def _arm(self, session: EngineSession) -> None:
        loop = asyncio.get_running_loop()
        session.timer = loop.call_later(self.auth_timeout, self._timed_out, session)

    def _timed_out(self, session: EngineSession) -> None:
        session.timer = None
        if self._open.get(session.sid) is not session or session.connected:
            return
        self.timed_out += 1
        who = remote_address(session.environ)
        log.info("closing a socket from %s: no accepted connect within %g s", who, self.auth_timeout)
        self.show_out(session.sid)

    async def _close(self, session: EngineSession) -> None:
        # The caller's packet (a connect_error) goes first, and the client gets a moment to read
        # it and leave by itself: a python-socketio client that gets the close right behind it
        # may never report the refusal (and `orders-live watch` waited for ever).
        await asyncio.sleep(SHOW_OUT_GRACE)
        if self._open.get(session.sid) is not session:
            return  # it left by itself
        try:
            async with asyncio.timeout(CLOSE_WITHIN):
                await self._disconnect(session.sid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # gone already; or a polling client that does not poll: its ping timeout ends it
            log.debug("a socket was not closed cleanly (%s)", type(exc).__name__)
        self.closed(session.sid)  # its slot is free whatever Engine.IO did
        request = session.environ.get("aiohttp.request")
        transport = getattr(request, "transport", None)
        if session.websocket and transport is not None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_later(ABORT_AFTER, transport.abort)


def remote_address(environ: dict[str, Any]) -> str:
    """The client's address: the request's (behind a trusted proxy, the one it forwarded:
    transports/http/forwarded_for.py). Not the environ's ``REMOTE_ADDR``: Engine.IO's aiohttp
    driver sets it to ``127.0.0.1`` for every client."""
    request = environ.get("aiohttp.request")
    return str(getattr(request, "remote", None) or environ.get("REMOTE_ADDR") or "?")
