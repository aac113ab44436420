"""Query parameters of the HTTP reads (SSE, polling, the REST list): the filter, a position,
a window and a page's size and cursor; and the answers to a position the hub refuses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from orders_live.domain.order import positive_int
from orders_live.domain.page import MAX_WINDOW, Cursor
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.hub import CatchUpBusy, PositionRefused, catch_up_client
from orders_live.transports.feed_requests import MAX_POSITION_LENGTH
from orders_live.transports.http.access import identity_of
from orders_live.transports.http.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def query_filter(query: Mapping[str, str], allowed: set[str]) -> SubscriptionFilter:
    unknown = sorted(set(query) - allowed - {"status", "id"})
    if unknown:
        raise ApiError(
            422,
            "validation_failed",
            "the query has invalid parameters",
            {name: "unknown query parameter" for name in unknown},
        )
    payload: dict[str, Any] = {}
    if query.get("status"):
        payload["status"] = query["status"]
    if query.get("id"):
        raw = query["id"]
        payload["id"] = positive_int(raw) or raw  # not an id: parse_filter says why
    try:
        return parse_filter(payload)
    except FilterError as exc:
        raise ApiError(422, "validation_failed", str(exc), exc.fields) from None


def position(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_POSITION_LENGTH:
        raise ApiError(422, "validation_failed", f"{name} is too long", {name: "not a position"})
    return value


def client_of(request: web.Request) -> str:
    """Whose catch-up a request is (the hub gives each client one catch-up slot at a time)."""
    return catch_up_client(identity_of(request), request.remote or "?")


@contextlib.contextmanager
def catch_up_refusals() -> Iterator[None]:
    """A position past the database's log: 422 (``since``); no catch-up slot in time: 503 ``busy``."""
    try:
        yield
    except PositionRefused as exc:
        raise ApiError(422, "validation_failed", "the query has invalid parameters", {"since": str(exc)}) from None
    except CatchUpBusy as exc:
        raise ApiError(503, "busy", str(exc), headers={"Retry-After": "1"}) from None


def window(text: str | None) -> int | None:
    """The ``limit`` of a windowed stream, or None; 422 unless it is 1…MAX_WINDOW."""
    if text is None:
        return None
    limit = positive_int(text, MAX_WINDOW)
    if limit is None:
        raise ApiError(
            422,
            "validation_failed",
            "the query has invalid parameters",
            {"limit": f"must be an integer from 1 to {MAX_WINDOW}"},
        )
    return limit


def page_limit(text: str | None, fields: dict[str, str]) -> int:
    """A page's ``limit`` (default 100, at most 1,000); a bad one goes into ``fields``."""
    if text is None:
        return DEFAULT_LIMIT
    limit = positive_int(text, MAX_LIMIT)
    if limit is None:
        fields["limit"] = f"must be an integer from 1 to {MAX_LIMIT}"
        return DEFAULT_LIMIT
    return limit


def page_cursor(text: str | None, fields: dict[str, str]) -> Cursor | None:
    """``before=``: the ``next_before`` of an earlier page; a bad one goes into ``fields``."""
    if text is None:
        return None
    cursor = Cursor.parse(text)
    if cursor is None:
        fields["before"] = "must be the next_before of an earlier page (<updated_at>_<id>)"
    return cursor
