"""A minimal Socket.IO (v5 over Engine.IO v4) websocket client on asyncio streams.

For load generation and fault tests, where python-socketio's client costs too much
CPU per message or hides the socket: it answers pings, sends events with acks, and
yields every server packet in arrival order. The caller decides when to read, so a
client that stops reading really does stop reading (with a small receive buffer, the
server feels it at once).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

OPEN, PING, PONG, MESSAGE = "0", "2", "3", "4"
SIO_CONNECT, SIO_EVENT, SIO_ACK = "0", "2", "3"


class LeanSocketIO:
    def __init__(self, url: str, receive_buffer: int | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.receive_buffer = receive_buffer
        # The stream stops reading the socket once this much is buffered and unread.
        self.read_ahead = receive_buffer or 2**16
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._next_ack = 0
        self.bytes_received = 0

    async def connect(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
        self._reader, self._writer = await asyncio.open_connection(sock=sock, limit=self.read_ahead)
        key = base64.b64encode(os.urandom(16)).decode()
        self._writer.write(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"no websocket upgrade: {head.splitlines()[0]!r}")
        opened = await self._text()
        if not opened.startswith(OPEN):
            raise ConnectionError(f"unexpected Engine.IO open packet {opened[:40]!r}")
        self.send_raw(MESSAGE + SIO_CONNECT)
        while not (await self._text()).startswith(MESSAGE + SIO_CONNECT):
            pass

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = None

    def send_raw(self, text: str) -> None:
        assert self._writer is not None
        data = text.encode()
        mask = os.urandom(4)
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 2**16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self._writer.write(header + mask + masked)

    def emit(self, event: str, payload: Any) -> int:
        """Send an event that asks for an ack; returns the ack id to wait for."""
        ack_id = self._next_ack
        self._next_ack += 1
        self.send_raw(MESSAGE + SIO_EVENT + str(ack_id) + json.dumps([event, payload]))
        return ack_id

    async def _text(self) -> str:
        """The next text frame (answering pings and skipping control frames)."""
        assert self._reader is not None
        while True:
            first, second = await self._reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self._reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
            payload = await self._reader.readexactly(length)
            self.bytes_received += length + 2
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("the server closed the websocket")
            if opcode == 0x1:
                text = payload.decode()
                if text == PING:
                    self.send_raw(PONG)
                    continue
                return text

    async def packets(self) -> AsyncIterator[tuple[str, int | None, Any]]:
        """Socket.IO packets: ("event", None, [name, payload]) or ("ack", id, [payload])."""
        while True:
            text = await self._text()
            if not text.startswith(MESSAGE):
                continue
            kind, body = text[1], text[2:]
            if kind not in (SIO_EVENT, SIO_ACK):
                continue
            digits = 0
            while digits < len(body) and body[digits].isdigit():
                digits += 1
            ack_id = int(body[:digits]) if digits else None
            yield ("event" if kind == SIO_EVENT else "ack", ack_id, json.loads(body[digits:]))
