"""Who may do what: optional read and write tokens, allowed origins, connection limits.

Tokens are off unless configured. A request shows its token as ``Authorization: Bearer
<token>``, or as ``?token=`` where a client cannot set headers (EventSource); a Socket.IO
client sends ``auth: {"token": ...}``. Missing → 401, wrong → 403. Refusals are logged
without the token.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

from orders_live.transports.http.errors import ApiError

log = logging.getLogger(__name__)

Need = Literal["read", "write"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AccessPolicy:
    def __init__(self, read_token: str | None, write_token: str | None, allowed_origins: list[str]) -> None:
        self.read_token, self.write_token = read_token, write_token
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)

    def check(self, token: str | None, need: Need, who: str) -> None:
        """Raises ApiError 401/403 unless ``token`` allows ``need``."""
        if need == "read":
            wanted = [t for t in (self.read_token, self.write_token) if t] if self.read_token else []
        else:  # writes need the write token; with only a read token set, that one
            wanted = [self.write_token] if self.write_token else [t for t in (self.read_token,) if t]
        if not wanted:
            return  # open: no token configured for this
        if token is None:
            log.info("refused %s from %s: no token", need, who)
            raise ApiError(401, "unauthorized", f"a {need} token is required")
        if not any(hmac.compare_digest(token.encode(), t.encode()) for t in wanted):
            log.warning("refused %s from %s: wrong token", need, who)
            raise ApiError(403, "forbidden", f"this token does not allow {need}s")

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True  # not a browser's cross-site request
        if host is not None and origin.split("://", 1)[-1] == host:
            return True  # same origin
        return origin.rstrip("/") in self.allowed_origins


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.query.get("token") or None


def auth_token(auth: object, query: Mapping[str, str]) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    return query.get("token") or None


def access_middleware(policy: AccessPolicy) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        path = request.path
        if path.startswith("/api/"):
            if not policy.origin_allowed(origin, request.host):
                raise ApiError(403, "origin_not_allowed", "this origin may not use the API")
            if request.method == "OPTIONS":
                response: web.StreamResponse = web.Response(status=204)
            else:
                need: Need = "read" if request.method in ("GET", "HEAD") else "write"
                policy.check(request_token(request), need, request.remote or "?")
                response = await handler(request)
            return response
        return await handler(request)

    return guard


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


class RateLimit:
    """A token bucket: ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float = 10) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class ConnectionBudget:
    """Connections open at once (Socket.IO and SSE together), up to ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open = max(0, self.open - 1)
