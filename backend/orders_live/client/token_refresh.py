"""Keeping a live connection's token fresh: before a provider's JWT expires, the next one is
handed to the server in-band (``refresh_token``), so that the connection and its
subscriptions go on untouched."""

from __future__ import annotations

import asyncio
import logging
import time

import socketio

from orders_live.client.tokens import Tokens

log = logging.getLogger(__name__)

REFRESH_ANSWER = 10.0  # seconds a refresh_token may wait for its ack


async def keep_fresh(sio: socketio.AsyncClient, tokens: Tokens, token: str | None) -> None:
    """Before ``token`` expires, get the next one and hand it to the live connection. A
    provider with nothing newer yet, or a refused refresh, is asked again a little later,
    until the token's end; past it the server ends the connection and the reconnect takes
    the provider's latest token."""
    current = token
    while (due := Tokens.refresh_at(current)) is not None:
        await asyncio.sleep(max(0.0, due - time.time()))
        exp = Tokens.expiry(current) or time.time()
        retry = min(5.0, max(0.25, (exp - time.time()) / 4))
        try:
            fresh = await tokens.get()
        except Exception as exc:
            log.warning("could not get a fresh token (%s); trying again in %.1f s", exc, retry)
            await asyncio.sleep(retry)
            continue
        if fresh is None or fresh == current:
            await asyncio.sleep(retry)  # nothing newer yet
            continue
        try:
            ack = await sio.call("refresh_token", {"token": fresh}, timeout=REFRESH_ANSWER)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.SocketIOError) as exc:
            log.warning("refreshing the token got no answer (%s)", type(exc).__name__)
            await asyncio.sleep(retry)
            continue
        if isinstance(ack, dict) and ack.get("ok"):
            current = fresh
            continue
        error = ack.get("error", {}) if isinstance(ack, dict) else {}
        log.warning("the server refused the refreshed token: %s (%s)", error.get("message"), error.get("code"))
        await asyncio.sleep(retry)
