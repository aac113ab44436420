"""The access rules on HTTP: the ``/api/`` middleware (who is asking, and may they), CORS.

Every ``/api/`` request but a CORS preflight is identified before its handler runs: by its
``Authorization: Bearer`` token, by a stream ticket (``?ticket=``, on the two event streams
only), or, with shared tokens, by ``?token=``. The handler finds the ``Identity`` with
``identity_of``. Writes also count against the identity's write rate. With no tokens
configured (open mode), writes come only from loopback peers unless ``remote_writes`` is set
(403 ``remote_writes_off``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from orders_live.domain.identity import Identity
from orders_live.identity.authenticator import Authenticator
from orders_live.identity.limits import IdentityLimits
from orders_live.identity.refusal_throttle import RefusalThrottle, Throttled
from orders_live.identity.refusals import AccessDenied
from orders_live.identity.shared_tokens import Need
from orders_live.transports.access import AccessPolicy
from orders_live.transports.http.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STREAMS = frozenset({"/api/changes/stream", "/api/agent/actions/stream"})  # where a ticket is taken
TICKETS = "/api/stream-tickets"
IDENTITY = web.RequestKey("identity", Identity)
REMOTE_WRITES_OFF = (
    "with no tokens configured, only this machine may write: set a write token"
    " (ORDERS_LIVE_WRITE_TOKEN, or JWTs), or ORDERS_LIVE_REMOTE_WRITES=true"
)


def identity_of(request: web.Request) -> Identity:
    """The identity the access middleware established for this request."""
    return request[IDENTITY]


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return None


def access_middleware(
    policy: AccessPolicy, authenticator: Authenticator, limits: IdentityLimits, refusals: RefusalThrottle
) -> Middleware:
    """``refusals``: guessed credentials (a token or ticket refused) throttle their address, as
    Socket.IO's connects do; a request without one is not counted."""

    @web.middleware
    def guard(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine (see ``errors.answered``): a WebSocket's request holds no frame of it.
        if not request.path.startswith("/api/"):
            return handler(request)
        return guard_api(request, handler)

    async def guard_api(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.origin_allowed(request.headers.get("Origin"), request.host):
            raise ApiError(403, "origin_not_allowed", "this origin may not use the API")
        if request.method == "OPTIONS":
            return web.Response(status=204)
        reading = request.method in ("GET", "HEAD") or request.path == TICKETS
        need: Need = "read" if reading else "write"
        who, presented = request.remote or "?", _presents_credential(request)
        if presented:
            try:
                await refusals.turn(who)
            except Throttled as exc:
                retry = str(math.ceil(exc.retry_after))
                raise ApiError(429, "rate_limited", str(exc), headers={"Retry-After": retry}) from None
        try:
            request[IDENTITY] = identity = _identify(request, authenticator, need)
        except AccessDenied as exc:
            if presented and not exc.proven:  # a guess; not a proven identity refused what it asked
                refusals.refused(who, exc.message)
            raise ApiError(exc.status, exc.code, exc.message) from None
        if not reading and authenticator.mode == "open" and not policy.open_write_allowed(request.remote):
            raise ApiError(403, "remote_writes_off", REMOTE_WRITES_OFF)
        if not reading and not limits.write_allowed(identity):
            raise ApiError(429, "rate_limited", f"at most {limits.writes.rate:g} writes a second for one identity")
        return await handler(request)

    return guard


def _presents_credential(request: web.Request) -> bool:
    return bool(request.headers.get("Authorization") or request.query.get("ticket") or request.query.get("token"))


def _identify(request: web.Request, authenticator: Authenticator, need: Need) -> Identity:
    who = request.remote or "?"
    ticket = request.query.get("ticket")
    if ticket and request.method == "GET" and request.path in STREAMS and bearer_token(request) is None:
        return authenticator.redeem_ticket(ticket, who)
    token = bearer_token(request)
    if token is None and authenticator.mode != "jwt":
        token = request.query.get("token") or None  # shared tokens only: EventSource's old way
    return authenticator.identify(token, need, who)


def cors_headers(policy: AccessPolicy) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: CORS headers for allowed origins on every API
    response, errors and event streams included (their headers go out before any body)."""

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is None or not request.path.startswith("/api/") or origin.rstrip("/") not in policy.allowed_origins:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, If-Match, Last-Event-ID"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE, OPTIONS"
        response.headers["Access-Control-Expose-Headers"] = "ETag"

    return add
