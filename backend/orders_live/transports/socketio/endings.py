"""How the server ends a Socket.IO connection of its own accord.

- Its session ended (its token expired or was revoked): the event that says why, then
  Socket.IO's disconnect packet, so that the client does not reconnect by itself with the token
  that just ended (it gets a fresh one first); a client that does not take it is dropped.
- It keeps asking and leaves the answers unread: its socket is closed (``EngineSessions``),
  rather than its answers held for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from orders_live.transports.metrics import TransportMetrics
from orders_live.transports.socketio.connection import ClientConnection
from orders_live.transports.socketio.engine_sessions import EngineSessions

log = logging.getLogger(__name__)

ENDING_FLUSH = 0.5  # seconds an ended session's last event may take to leave before the disconnect
ENDING_DISCONNECT = 0.4  # and the disconnect packet, before the socket is simply closed (revocation: < 1 s)

Disconnect = Callable[[str], Awaitable[None]]  # Socket.IO's disconnect of one client (its sid)


class Endings:
    def __init__(self, disconnect: Disconnect, sessions: EngineSessions, metrics: TransportMetrics) -> None:
        self._disconnect, self.sessions, self.metrics = disconnect, sessions, metrics
        self._tasks: set[asyncio.Task[None]] = set()

    def session_ended(self, connection: ClientConnection, event: str, payload: dict[str, Any]) -> None:
        """Say why (``event``), then disconnect."""
        connection.emit(event, payload)
        task = asyncio.create_task(self._disconnect_ended(connection), name=f"socketio.ended.{connection.sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def answers_unread(self, connection: ClientConnection) -> None:
        if connection.broken:
            return
        connection.broken = True  # a snapshot being sent to it stops
        self.metrics.refused_packets.labels("answers unread").inc()
        who = connection.admitted.who if connection.admitted else "?"
        waiting = connection.queue.reply_capacity
        log.warning("disconnecting client %s from %s: %d answers wait unread", connection.sid, who, waiting)
        self.sessions.show_out(connection.eio_sid)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _disconnect_ended(self, connection: ClientConnection) -> None:
        await connection.flush(ENDING_FLUSH)
        try:
            async with asyncio.timeout(ENDING_DISCONNECT):
                await self._disconnect(connection.sid)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("an ended client was not disconnected cleanly (%s)", type(exc).__name__)
            connection.channel.drop()
