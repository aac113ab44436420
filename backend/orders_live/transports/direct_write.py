"""Bytes written straight to a client's socket, for both transports (Socket.IO's WebSocket frames,
``socketio._engine_channel``; an event stream's HTTP chunks, ``http.sse_direct``): the one reach
into aiohttp's internals that they share.

A frame or chunk framed once is written to every client that gets it with one synchronous
``transport.write``, from the loop, to a client that is not holding back; a client that reads
slowly is seen, and waited for, through aiohttp's ``protocol.writing_paused`` and
``protocol._drain_helper()`` (``BaseProtocol``).

``PROBLEMS`` is this module's start-up self-check: what it relies on, compared with the aiohttp
it was written against, once per process. When anything differs, ``DirectWriter.of`` gives no
writer and both transports use their library's own path (Engine.IO's ``send``, aiohttp's
``response.write``), which the test suite runs too (``tests/test_direct_write.py``).
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version
from typing import Any

from aiohttp.base_protocol import BaseProtocol

TESTED_AIOHTTP = "3.14"  # major.minor


def check() -> list[str]:
    """[] when aiohttp is as tested."""
    problems = []
    found = version("aiohttp")
    if not found.startswith(TESTED_AIOHTTP + "."):
        problems.append(f"tested with aiohttp {TESTED_AIOHTTP}, found {found}")
    if not isinstance(getattr(BaseProtocol, "writing_paused", None), property):
        problems.append("aiohttp's BaseProtocol.writing_paused is gone")
    drain = getattr(BaseProtocol, "_drain_helper", None)
    if drain is None or list(inspect.signature(drain).parameters) != ["self"]:
        problems.append("aiohttp's BaseProtocol._drain_helper is not the method this was written for")
    return problems


PROBLEMS = check()


class DirectWriter:
    """One client's socket: its transport and protocol, kept from the start (a WebSocket or a
    streamed response keeps both for its life; a closed transport says so by ``is_closing``)."""

    __slots__ = ("_protocol", "_transport")

    def __init__(self, transport: asyncio.BaseTransport | None, protocol: Any) -> None:
        self._transport: Any = transport  # any transport that writes (asyncio's, uvloop's)
        self._protocol = protocol

    @classmethod
    def of(cls, request: Any) -> DirectWriter | None:
        """The socket of an aiohttp request; None when the self-check found a difference."""
        if PROBLEMS or request.transport is None:
            return None
        return cls(request.transport, request.protocol)

    @property
    def open(self) -> bool:
        transport = self._transport
        return transport is not None and not transport.is_closing()

    @property
    def writable(self) -> bool:
        """Open, and not holding back a client that reads slowly."""
        transport, protocol = self._transport, self._protocol  # spelled out: once per client and change
        return (
            transport is not None and not transport.is_closing() and (protocol is None or not protocol.writing_paused)
        )

    def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def close_after(self, last: bytes) -> None:
        """Write ``last`` after what is buffered, then close the socket."""
        if self.open:
            self._transport.write(last)
            self._transport.close()

    async def drained(self) -> None:
        """Returns once the socket takes more (at once unless the client reads slowly)."""
        protocol = self._protocol
        if protocol is not None and protocol.writing_paused:
            await protocol._drain_helper()
