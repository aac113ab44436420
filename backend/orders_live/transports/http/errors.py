"""JSON errors for the REST API: ``{"error": {"code", "message", "fields"}}``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from orders_live.domain.identity import Forbidden
from orders_live.domain.order import UnreadableName

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message, "fields": self.fields}, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


def fields_of(error: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "body"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "literal_error":
            message = "must be one of pending, shipped, delivered"
        fields.setdefault(name, message)
    return fields


async def answered(response: web.StreamResponse) -> web.StreamResponse:
    """``response`` as a middleware's awaitable answer.

    A middleware that only decides whether a request goes on (``host_guard``, ``forwarded_for``,
    ``access``) is a plain function returning its handler's awaitable, not a coroutine that
    awaits it: a coroutine's frame stays alive as long as its request, and a WebSocket's request
    lasts as long as its connection (at ten thousand connections, a few hundred bytes each,
    per middleware). Such a pass-through middleware answers with ``answered(response)``."""
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except Forbidden as exc:  # the identity's role may not do this (domain/identity.py)
        return ApiError(403, "forbidden", exc.message, exc.fields).response()
    except ValidationError as exc:
        return ApiError(422, "validation_failed", "the request has invalid fields", fields_of(exc)).response()
    except UnreadableName as exc:  # the database's rule (sources/postgres/sql/schema.sql)
        return ApiError(422, "validation_failed", str(exc), exc.fields).response()
    except web.HTTPRequestEntityTooLarge:
        return ApiError(413, "body_too_large", "the request body is over the size limit").response()
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = exc.reason.lower().replace(" ", "_")
        return ApiError(exc.status, code, exc.reason).response()
