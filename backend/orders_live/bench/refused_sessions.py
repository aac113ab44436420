"""``orders-live bench --attack refused-sessions`` and ``--attack bad-tokens``: Engine.IO
sessions that never get an accepted Socket.IO connect, on a service that requires a read token.

- refused-sessions: ``SESSIONS`` WebSockets each open an Engine.IO session and send one
  Socket.IO connect, half with a wrong token and half with none; each then keeps its session
  alive (it answers the server's pings) until the server closes it. Reported: how many are
  still open ``MARKS`` seconds after the last one sent its connect (answered or not: a server
  that throttles refusals may answer late), and the service's open files then. Done when: all
  closed within 10 s.
- bad-tokens: one WebSocket sends ``ATTEMPTS`` connects with wrong tokens within
  ``BURST_WITHIN`` seconds, then listens for ``LISTEN`` seconds. Reported: how many were
  answered, whether the server closed the socket, and how many WARNING lines it logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from orders_live.bench.attack_target import Scratch, attacked, since

SESSIONS = 300
MARKS = (1.0, 5.0, 10.0)
MAX_OPEN_AFTER_S = 10.0
ATTEMPTS = 200
BURST_WITHIN = 0.1
LISTEN = 3.0
OPEN_WITHIN = 30.0  # seconds for all the sessions to be opened
ENGINE_PATH = "/socket.io/?EIO=4&transport=websocket"
PING, PONG, CONNECT, CONNECT_ERROR = "2", "3", "40", "44"


def connect_packet(token: str | None) -> str:
    """A Socket.IO connect to the default namespace, with ``{"token": ...}`` or no auth."""
    return CONNECT if token is None else CONNECT + json.dumps({"token": token})


@dataclass
class Session:
    """One Engine.IO session's fate: refused (``44``), accepted (``40``), when the server closed it."""

    refused: bool = False
    accepted: bool = False
    refused_at: float | None = None
    closed_at: float | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # refused, accepted or closed
    opened: asyncio.Event = field(default_factory=asyncio.Event)  # its connect sent (or the socket failed)


async def engine_session(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket with its Engine.IO session open (the open packet read)."""
    socket = await session.ws_connect(url.replace("http://", "ws://") + ENGINE_PATH, autoping=True)
    opened = await socket.receive_str()
    if not opened.startswith("0"):
        raise ConnectionError(f"unexpected Engine.IO open packet {opened[:40]!r}")
    return socket


async def hold(socket: aiohttp.ClientWebSocketResponse, fate: Session, answers: list[str] | None = None) -> None:
    """Answer pings and note connect answers until the server closes the socket."""
    async for message in socket:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        text = str(message.data)
        if text == PING:
            await socket.send_str(PONG)
        elif text.startswith(CONNECT_ERROR):
            fate.refused, fate.refused_at = True, fate.refused_at or time.monotonic()
            fate.answered.set()
        elif text.startswith(CONNECT):
            fate.accepted = True
            fate.answered.set()
        if answers is not None and text.startswith("4"):
            answers.append(text)
    fate.closed_at = time.monotonic()
    fate.answered.set()


async def refused_one(session: aiohttp.ClientSession, url: str, token: str | None, fate: Session) -> None:
    try:
        socket = await engine_session(session, url)
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        fate.closed_at = time.monotonic()
        fate.answered.set()
        fate.opened.set()
        return
    try:
        await socket.send_str(connect_packet(token))
        fate.opened.set()
        await hold(socket, fate)
    finally:
        await socket.close()


def service_env(token: str) -> tuple[dict[str, str], dict[str, str]]:
    """The service's settings (a read token) and the headers the bench's own reads need."""
    return {"ORDERS_LIVE_READ_TOKEN": token}, {"Authorization": f"Bearer {token}"}


async def refused_sessions(scratch: Scratch, folder: Path) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    env, headers = service_env(token)
    database = await scratch.fresh("refused_sessions")
    async with attacked(folder, database, env, headers) as service:
        files_before = service.open_files()
        fates = [Session() for _ in range(SESSIONS)]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            started = time.monotonic()
            wrong = [f"wrong-{n}" if n % 2 else None for n in range(SESSIONS)]
            tasks = [
                asyncio.create_task(refused_one(session, service.url, wrong[n], fates[n]), name=f"bench-refused-{n}")
                for n in range(SESSIONS)
            ]
            opened = asyncio.gather(*(fate.opened.wait() for fate in fates))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(opened, OPEN_WITHIN)
            last_opened = time.monotonic()
            opened_in = since(started)
            marks = []
            for mark in MARKS:
                await asyncio.sleep(max(0.0, last_opened + mark - time.monotonic()))  # the next mark
                still = sum(f.closed_at is None for f in fates)
                marks.append({"after_s": mark, "still_open": still, "service_open_files": service.open_files()})
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    closed = [f.closed_at - last_opened for f in fates if f.closed_at is not None]
    return {
        "scenario": "refused-sessions",
        "database": scratch.kind,
        "sessions": SESSIONS,
        "opened_in_s": opened_in,
        "refused": sum(f.refused for f in fates),
        "closed_unanswered": sum(f.closed_at is not None and not (f.refused or f.accepted) for f in fates),
        "accepted": sum(f.accepted for f in fates),
        "service_open_files_before": files_before,
        "marks": marks,
        "last_closed_after_s": round(max(closed), 2) if len(closed) == SESSIONS else None,
        "done_when": {f"all closed within {MAX_OPEN_AFTER_S:g} s": marks[-1]["still_open"] == 0},
    }


async def bad_tokens(scratch: Scratch, folder: Path) -> dict[str, Any]:
    token = secrets.token_urlsafe(24)
    env, headers = service_env(token)
    database = await scratch.fresh("bad_tokens")
    async with attacked(folder, database, env, headers) as service:
        await asyncio.sleep(1.0)  # start-up's own lines are not counted
        offset = service.log_offset()
        fate, answers = Session(), list[str]()
        async with aiohttp.ClientSession() as session:
            socket = await engine_session(session, service.url)
            listening = asyncio.create_task(hold(socket, fate, answers), name="bench-bad-tokens")
            started = time.monotonic()
            sent = 0
            try:
                for n in range(ATTEMPTS):
                    await socket.send_str(connect_packet(f"wrong-{n}"))
                    sent += 1
                    await asyncio.sleep(max(0.0, started + (n + 1) * BURST_WITHIN / ATTEMPTS - time.monotonic()))
            except ConnectionResetError:
                pass  # the server closed the socket during the burst
            burst = since(started)
            await asyncio.wait({listening}, timeout=LISTEN)  # the answers, or the server's close
            closed_after = round(fate.closed_at - started, 2) if fate.closed_at is not None else None
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await socket.close()
        await asyncio.sleep(0.5)  # the service's last log lines
        warnings = service.warnings_since(offset)
    return {
        "scenario": "bad-tokens",
        "database": scratch.kind,
        "attempts_sent": sent,
        "burst_s": burst,
        "answered": sum(answer.startswith(CONNECT_ERROR) for answer in answers),
        "accepted": fate.accepted,
        "socket_closed_by_server": closed_after is not None,
        "closed_after_s": closed_after,
        "warning_lines": warnings,
        "done_when": {},  # the issue sets no figure: throttled, closed, one summarised line
    }
