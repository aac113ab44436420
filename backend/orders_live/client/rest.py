"""A small client for the REST API, used by the CLI and the simulator."""

from __future__ import annotations

from typing import Any

import aiohttp

from orders_live.client.tokens import Tokens, TokenSource


class ApiRefused(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        fields = error.get("fields") or {}
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
        super().__init__(f"HTTP {status}: {error.get('message', body)}" + (f" ({detail})" if detail else ""))
        self.status, self.body = status, body


class OrdersClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession, token: TokenSource = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.tokens = Tokens(token)

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        token = await self.tokens.get()
        headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
        async with self.session.request(method, f"{self.base_url}{path}", json=body, headers=headers) as response:
            payload = await response.json() if response.content_type == "application/json" else None
            if response.status >= 400:
                raise ApiRefused(response.status, payload)
            return payload

    async def list(self, status: str | None = None, limit: int = 100) -> dict[str, Any]:
        query = f"?limit={limit}" + (f"&status={status}" if status else "")
        result: dict[str, Any] = await self._call("GET", f"/api/orders{query}")
        return result

    async def create(self, customer_name: str, product_name: str, status: str | None = None) -> dict[str, Any]:
        body = {"customer_name": customer_name, "product_name": product_name}
        if status:
            body["status"] = status
        result: dict[str, Any] = await self._call("POST", "/api/orders", body)
        return result

    async def update(self, order_id: int, if_match: int | None = None, **fields: str) -> dict[str, Any]:
        headers = {"If-Match": str(if_match)} if if_match is not None else None
        result: dict[str, Any] = await self._call("PATCH", f"/api/orders/{order_id}", fields, headers)
        return result

    async def delete(self, order_id: int) -> None:
        await self._call("DELETE", f"/api/orders/{order_id}")
