"""Event-stream bytes written straight to a client's socket: the one reach into aiohttp here.

An SSE response is HTTP/1.1 chunked. Once its headers are out (the stream's first write),
a change's event, framed once as a chunk and shared by every stream that gets it, can be
written with one ``transport.write`` to each client that has nothing queued and is not
holding back (``BaseProtocol.writing_paused``): no per-client encoding and no task to wake,
as on the Socket.IO direct path. Everything else (keep-alives, snapshot pages, a client that
reads slowly) goes through the stream's queue and aiohttp's own ``response.write``.

``check`` compares what this relies on with the aiohttp it was written against; if anything
differs, or a response is not chunked, streams use aiohttp's path only.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from aiohttp import hdrs, web
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
    if not isinstance(getattr(web.StreamResponse, "compression", None), property):
        problems.append("aiohttp's StreamResponse.compression is gone")
    return problems


PROBLEMS = check()


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class DirectStream:
    """One event stream's socket, once its headers are out."""

    def __init__(self, request: web.Request) -> None:
        self._request = request

    @classmethod
    def of(cls, request: web.Request, response: web.StreamResponse) -> DirectStream | None:
        """None unless the direct path can serve this response (call after its first write)."""
        # aiohttp chunks a response with no length by itself, without setting ``chunked``:
        # its Transfer-Encoding header says what went out.
        chunked = response.headers.get(hdrs.TRANSFER_ENCODING, "").lower() == "chunked"
        if PROBLEMS or not chunked or response.compression:
            return None
        return cls(request)

    @property
    def writable(self) -> bool:
        transport = self._request.transport
        protocol: Any = self._request.protocol
        return (
            transport is not None and not transport.is_closing() and (protocol is None or not protocol.writing_paused)
        )

    def write(self, framed: bytes) -> None:
        # Any transport that writes (asyncio's, uvloop's: not an asyncio.WriteTransport subclass).
        transport = self._request.transport
        if transport is not None and not transport.is_closing():
            transport.write(framed)
