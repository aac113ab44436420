"""Engine.IO long-polling refused, for a service of several worker processes.

A long-polling session is a series of HTTP requests, each on any connection; with
``serve --workers N`` (N > 1) the kernel hands each connection to any worker (SO_REUSEPORT),
so the requests of one session land on workers that do not hold it. Rather than fail at
random, every long-polling request gets 400 ``polling_unavailable`` at once, saying to use
the WebSocket transport (every client of ours does). WebSocket, SSE, REST and
``/api/changes`` (our own stateless polling) are not affected: each is one connection, or
holds no session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from orders_live.transports.http.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REFUSAL = (
    "Engine.IO long-polling is not available: this service runs several worker processes;"
    " connect with the WebSocket transport (transports: ['websocket'])"
)


def engine_polling_refused(prefix: str) -> Middleware:
    """Inside ``json_errors``: a request under ``prefix`` (Engine.IO's path) for the
    ``polling`` transport is answered 400 ``polling_unavailable``; the others pass."""

    @web.middleware
    async def refuse(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefix) and request.query.get("transport") == "polling":
            raise ApiError(400, "polling_unavailable", REFUSAL)
        return await handler(request)

    return refuse
