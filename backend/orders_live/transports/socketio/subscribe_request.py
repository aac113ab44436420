"""What a ``subscribe`` asks for: a filter (within the connection's scope), and optionally
``since`` (the position to catch up from) and ``limit`` (a window of the newest orders)."""

from __future__ import annotations

from typing import Any, NamedTuple

from orders_live.domain.page import MAX_WINDOW
from orders_live.domain.subscription import FilterError, SubscriptionFilter, parse_filter
from orders_live.transports.feed_requests import MAX_POSITION_LENGTH


class SubscribeRequest(NamedTuple):
    wanted: SubscriptionFilter
    since: str | None
    limit: int | None


def parse_subscribe(payload: Any, scope: str | None) -> SubscribeRequest:
    """The request in ``payload``; FilterError (with field messages) when it is not one."""
    wanted = parse_filter(payload, extra_keys=frozenset({"since", "limit"})).within(scope)
    return SubscribeRequest(wanted, _since(payload), _limit(payload))


def _limit(payload: Any) -> int | None:
    if not isinstance(payload, dict) or payload.get("limit") is None:
        return None
    limit = payload["limit"]
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_WINDOW:
        raise FilterError({"limit": f"must be an integer from 1 to {MAX_WINDOW}"})
    return limit


def _since(payload: Any) -> str | None:
    if not isinstance(payload, dict) or payload.get("since") is None:
        return None
    since = payload["since"]
    if not isinstance(since, str) or not 0 < len(since) <= MAX_POSITION_LENGTH:
        raise FilterError({"since": "must be a position string from an earlier change"})
    return since
