"""A client socket's kernel send buffer, bounded so that a client that stops reading is noticed
after a few hundred KiB rather than after the kernel's autotuned megabytes."""

from __future__ import annotations

import asyncio
import socket


def bound_send_buffer(transport: asyncio.BaseTransport | None, size: int) -> None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if size > 0 and sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
