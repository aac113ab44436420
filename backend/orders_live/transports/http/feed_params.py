"""Query parameters of the HTTP change feeds (SSE and polling): the filter and a position."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orders_live.domain.order import positive_int
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.transports.http.errors import ApiError

MAX_POSITION_LENGTH = 4096


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
