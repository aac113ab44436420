"""The fast path to a client's socket: one shared WebSocket frame, written straight to
each client's transport (python-engineio's per-client queue and writer task cost
~65 µs per packet; this costs a ``transport.write``).

This is the one module that reaches into python-engineio and aiohttp (both pinned).
It is used only when it can be used safely:

- the client opened its connection as a WebSocket (``transport=websocket``), so the
  request in its Engine.IO environ owns the socket the frames go to;
- ``direct_frames_supported()`` checked, at start-up, the library versions it was
  written against; otherwise every packet takes Engine.IO's own path.

A server→client frame is unmasked, so one frame's bytes serve every client. Frames are
sent uncompressed (RSV1 clear), which is valid on a connection that negotiated
permessage-deflate. Each frame goes out in one synchronous ``transport.write`` from the
event loop, so frames from Engine.IO's writer (pings) never interleave with ours.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from importlib.metadata import version
from typing import Any

log = logging.getLogger(__name__)

TESTED = {"python-engineio": "4.15.1", "python-socketio": "5.18.1", "aiohttp": "3.14.5"}


def direct_frames_supported() -> bool:
    found = {name: version(name) for name in TESTED}
    if found != TESTED:
        log.warning("direct WebSocket frames off: tested with %s, found %s", TESTED, found)
        return False
    return True


def text_frame(text: str) -> bytes:
    """One final, unmasked, uncompressed WebSocket text frame."""
    data = text.encode()
    length = len(data)
    if length < 126:
        return struct.pack("!BB", 0x81, length) + data
    if length < 2**16:
        return struct.pack("!BBH", 0x81, 126, length) + data
    return struct.pack("!BBQ", 0x81, 127, length) + data


class DirectSocket:
    """Writes Engine.IO message frames straight to one client's transport."""

    def __init__(self, request: Any) -> None:
        self._request = request

    @staticmethod
    def for_client(environ: dict[str, Any]) -> DirectSocket | None:
        request = environ.get("aiohttp.request")
        if request is None or "transport=websocket" not in environ.get("QUERY_STRING", ""):
            return None  # long-polling, or upgraded from it: Engine.IO's path
        return DirectSocket(request)

    @property
    def open(self) -> bool:
        transport = self._request.transport
        return transport is not None and not transport.is_closing()

    @property
    def writable(self) -> bool:
        """Open, and not holding back a client that reads slowly."""
        protocol = self._request.protocol
        return self.open and (protocol is None or not protocol.writing_paused)

    def write(self, frame: bytes) -> None:
        transport: asyncio.Transport | None = self._request.transport
        if transport is not None and not transport.is_closing():
            transport.write(frame)

    async def drained(self) -> None:
        """Returns once the socket takes more (at once unless the client reads slowly)."""
        protocol = self._request.protocol
        if protocol is not None and protocol.writing_paused:
            await protocol._drain_helper()
