"""The access rules on HTTP: the ``/api/`` middleware, tokens from headers or the query, CORS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from orders_live.transports.access import AccessDenied, AccessPolicy, Need
from orders_live.transports.http.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.query.get("token") or None


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
                try:
                    policy.check(request_token(request), need, request.remote or "?")
                except AccessDenied as exc:
                    raise ApiError(exc.status, exc.code, exc.message) from None
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
