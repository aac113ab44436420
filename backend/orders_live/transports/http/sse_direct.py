"""Event-stream bytes written straight to a client's socket, through the writer both transports
share (``transports.direct_write``).

An SSE response is HTTP/1.1 chunked. Once its headers are out (the stream's first write),
a change's event, framed once as a chunk and shared by every stream that gets it, can be
written with one ``transport.write`` to each client that has nothing queued and is not
holding back: no per-client encoding and no task to wake, as on the Socket.IO direct path.
Everything else (keep-alives, snapshot pages, a client that reads slowly) goes through the
stream's queue and aiohttp's own ``response.write``.

``direct_stream`` gives no writer, so that streams use aiohttp's path only, when
``direct_write``'s self-check found a difference, when ``check`` (what this module adds: the
response's ``compression``) does, or when a response is not chunked.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from orders_live.transports.direct_write import DirectWriter


def check() -> list[str]:
    """[] when aiohttp's responses are as tested."""
    if not isinstance(getattr(web.StreamResponse, "compression", None), property):
        return ["aiohttp's StreamResponse.compression is gone"]
    return []


PROBLEMS = check()


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def direct_stream(request: web.Request, response: web.StreamResponse) -> DirectWriter | None:
    """The stream's socket, or None unless the direct path can serve this response (call after
    its first write)."""
    # aiohttp chunks a response with no length by itself, without setting ``chunked``:
    # its Transfer-Encoding header says what went out.
    chunked = response.headers.get(hdrs.TRANSFER_ENCODING, "").lower() == "chunked"
    if PROBLEMS or not chunked or response.compression:
        return None
    return DirectWriter.of(request)
