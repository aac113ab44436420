"""One client's way out, for the engine adapter (``_engine``, whose ``check_engine`` verifies what
this module relies on): WebSocket frames written straight to its transport (a
``transports.direct_write.DirectWriter``, shared with the event streams), or python-engineio's
own send; and how to tell that the client reads slowly (the writer's ``drained``, Engine.IO's
``sockets[sid].queue``)."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from orders_live.transports.direct_write import DirectWriter
from orders_live.transports.socketio._engine_socket import CLOSE_FRAME, frame

SERVICE_RESTART = (1012).to_bytes(2, "big") + b"service restart"  # a WebSocket close frame's body
ENGINEIO_BACKLOG = 8  # packets handed to Engine.IO and not yet taken by its writer
WRITE_BUFFER_HIGH = 64 * 1024  # fallback: bytes in a transport's buffer before a writer waits


class Channel:
    """One client's way out: frames straight to its socket (``direct``), or Engine.IO's send."""

    def __init__(self, sio: socketio.AsyncServer, sid: str, environ: dict[str, Any], direct_path: bool) -> None:
        self._eio = sio.eio
        self._eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
        self._request = environ.get("aiohttp.request")
        self._direct_path = direct_path
        websocket = "transport=websocket" in environ.get("QUERY_STRING", "")
        self._socket = DirectWriter.of(self._request) if direct_path and self._request else None
        self.direct = self._socket if websocket else None

    async def send(self, text: str) -> None:
        await self._eio.send(self._eio_sid, text)

    async def wait_writable(self) -> None:
        """After an Engine.IO send: wait while the client is behind."""
        if self._direct_path:
            # Packets pile up in Engine.IO's queue, and (seen on aiohttp 3.14) in aiohttp's
            # buffer while the socket is paused: wait on both.
            engineio_socket = self._eio.sockets.get(self._eio_sid)
            if engineio_socket is not None and engineio_socket.queue.qsize() > ENGINEIO_BACKLOG:
                await engineio_socket.queue.join()
            if self._socket is not None:
                await self._socket.drained()
            return
        transport = getattr(self._request, "transport", None)
        pause = 0.002
        while transport is not None and not transport.is_closing():
            if transport.get_write_buffer_size() <= WRITE_BUFFER_HIGH:
                return
            await asyncio.sleep(pause)
            pause = min(0.1, pause * 2)

    def going_away(self) -> None:
        """The service stops: on the direct path the WebSocket is closed with 1012 at once (the
        libraries' path leaves it to Engine.IO's shutdown)."""
        if self.direct is not None:
            self.direct.close_after(frame(SERVICE_RESTART, CLOSE_FRAME))

    def drop(self) -> None:
        """Close the client's connection without a disconnect packet, so that it reconnects; at
        once, dropping what is buffered (close() would wait for a client that reads nothing)."""
        transport = getattr(self._request, "transport", None)
        if transport is not None:
            transport.abort()
