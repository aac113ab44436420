"""What the agent asks of the service over HTTP: reading orders (never writing one) and the
append-only action log (docs/agent.md, "The action log over HTTP")."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from orders_live.client.tokens import Tokens, TokenSource
from orders_live.domain.order import MAX_ID, OrderJson
from orders_live.domain.page import Cursor
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)
ORDER_FIELDS = ("id", "customer_name", "product_name", "status", "updated_at", "version")
SCAN_LIMIT = 5_000  # orders find_orders reads at most, per status, before it stops and says so
PAGE = 500


class ServiceError(Exception):
    """The service refused or failed a call (its status and message are in the text)."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {error.get('message', body)}")
        self.status, self.body = status, body


class _Http:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, token: TokenSource) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.tokens = Tokens(token)

    async def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None) -> Any:
        token = await self.tokens.get()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(
            method, f"{self.base_url}{path}", params=params, json=body, headers=headers
        ) as response:
            payload = await response.json() if response.content_type == "application/json" else None
            if response.status >= 400:
                raise ServiceError(response.status, payload)
            return payload


class OrdersReader(_Http):
    """Read-only: the agent's only way to orders besides its live view. It has no write."""

    async def get_order(self, order_id: int) -> OrderJson | None:
        try:
            order: OrderJson = await self.call("GET", f"/api/orders/{order_id}")
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise
        return _fields(order)

    async def find_orders(
        self, status: str | None, customer: str | None, older_than: float | None, limit: int
    ) -> tuple[list[OrderJson], bool]:
        """The newest ``limit`` matching orders, and whether more may exist (more matched, or a
        status's scan stopped at ``SCAN_LIMIT`` orders). Each status is read newest first, so
        its first ``limit`` matches are all it can add to the newest ``limit`` overall."""
        needle = customer.casefold() if customer else None
        found: list[OrderJson] = []
        more = False
        for one in [status] if status else ["pending", "shipped", "delivered"]:
            before = _cutoff(older_than) if older_than is not None else None
            matched = scanned = 0
            while matched < limit:
                params = {"status": one, "limit": str(PAGE)}
                if before is not None:
                    params["before"] = before.wire()
                page = await self.call("GET", "/api/orders", params)
                for order in page["orders"]:
                    if matched < limit and (needle is None or needle in order["customer_name"].casefold()):
                        found.append(_fields(order))
                        matched += 1
                scanned += len(page["orders"])
                if page.get("next_before") is None:
                    break
                if scanned >= SCAN_LIMIT:
                    more = True
                    break
                before = Cursor.parse(page["next_before"])
            more = more or matched >= limit
        found.sort(key=lambda o: (o["updated_at"], o["id"]), reverse=True)
        return found[:limit], more


class ActionLog(_Http):
    """The service's ``agent_actions`` store: append, and ask whether an action exists."""

    async def record(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Append; (the stored record, True), or (the existing action, False) if this
        (trigger, order, version) already has one. A 429 (the log's rate) is waited out here,
        with growing delays: the trigger is not planned again, so no model call is spent twice."""
        backoff: Backoff | None = None
        while True:
            try:
                stored: dict[str, Any] = await self.call("POST", "/api/agent/actions", body=record)
            except ServiceError as exc:
                if exc.status == 409 and isinstance(exc.body, dict) and "record" in exc.body:
                    return exc.body["record"], False
                if exc.status != 429:
                    raise
                backoff = backoff or Backoff("the action log's rate (429)", log, first=0.5, cap=10.0)
                await backoff.wait(exc)
                continue
            return stored, True

    async def actions(self, **filters: str | int) -> list[dict[str, Any]]:
        params = {"limit": "500", **{k: str(v) for k, v in filters.items()}}
        body = await self.call("GET", "/api/agent/actions", params)
        return list(body["actions"])

    async def acted(self, trigger: str, order_id: int, version: int | None) -> bool:
        """Whether an action exists for this trigger and order (at ``version``, or any)."""
        filters: dict[str, str | int] = {"kind": "action", "trigger": trigger, "order_id": order_id}
        if version is not None:
            filters["order_version"] = version
        return bool(await self.actions(**filters))


def _fields(order: OrderJson) -> OrderJson:
    return {name: order.get(name) for name in ORDER_FIELDS}


def _cutoff(older_than: float) -> Cursor:
    """The cursor of "changed at least ``older_than`` seconds ago"."""
    return Cursor(datetime.fromtimestamp(time.time() - older_than, UTC), MAX_ID)
