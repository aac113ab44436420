"""``orders-live watch``: print each change as it arrives, one line each; reconnect by itself."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, TextIO

import socketio

from .model import OrderJson


class Watcher:
    """Follows one filter; after a reconnect it catches up from the last position it saw."""

    def __init__(self, url: str, wanted: dict[str, Any], as_json: bool = False, out: TextIO = sys.stdout) -> None:
        self.url, self.wanted, self.as_json, self.out = url, wanted, as_json, out
        self.position: str | None = None
        self.orders: dict[int, OrderJson] = {}
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=5)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("order_change", self._on_change)
        self.sio.on("resync", self._on_resync)

    async def run(self) -> None:
        await self.sio.connect(self.url, transports=["websocket"], retry=True)
        await self.sio.wait()

    async def _on_connect(self) -> None:
        payload = dict(self.wanted)
        if self.position is not None:
            payload["since"] = self.position
        # The ack comes through the same ordered stream: replayed changes arrive before it.
        asyncio.get_running_loop().create_task(self._subscribe(payload), name="watch-subscribe")

    async def _subscribe(self, payload: dict[str, Any]) -> None:
        ack = await self.sio.call("subscribe", payload, timeout=30)
        if not ack.get("ok"):
            self._say({"event": "error", **ack}, f"subscribe refused: {ack.get('error')}")
            await self.sio.disconnect()
            return
        self.position = ack["position"]
        if "orders" in ack:
            self.orders = {o["id"]: o for o in ack["orders"]}
            why = f" (resync: {ack['resync']})" if "resync" in ack else ""
            self._say({"event": "snapshot", **ack}, f"-- {len(self.orders)} orders{why}, live from here")
        else:
            self._say({"event": "caught_up", **ack}, f"-- caught up: {ack['replayed']} changes replayed")

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._say({"event": "disconnected"}, "-- connection lost, reconnecting…")

    async def _on_change(self, change: dict[str, Any]) -> None:
        self.position = change["position"]
        before = self.orders.get(change["id"])
        order = change["order"]
        if order is None:
            self.orders.pop(change["id"], None)
        else:
            if before is not None and before["version"] >= order["version"]:
                return  # already seen
            self.orders[change["id"]] = order
        self._say(change, describe(change, before))

    async def _on_resync(self, message: dict[str, Any]) -> None:
        self.position = message["position"]
        self.orders = {o["id"]: o for o in message["orders"]}
        self._say({"event": "resync", **message}, f"-- resync ({message['reason']}): {len(self.orders)} orders")

    def _say(self, payload: dict[str, Any], text: str) -> None:
        line = json.dumps(payload, separators=(",", ":")) if self.as_json else text
        print(line, file=self.out, flush=True)


def describe(change: dict[str, Any], before: OrderJson | None) -> str:
    stamp = change["committed_at"][11:23]
    order = change["order"] or before
    if order is None:
        return f"{stamp} delete #{change['id']}"
    status = order["status"] if change["order"] else "deleted"
    if before is not None and change["order"] is not None and before["status"] != status:
        status = f"{before['status']} -> {status}"
    return (
        f"{stamp} {change['op']:<6} #{change['id']:<5} {status:<22} "
        f"{order['customer_name']} / {order['product_name']}  v{order['version']}"
    )
