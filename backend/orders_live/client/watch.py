"""``orders-live watch``: print each change as it arrives, one line each; reconnect by itself.

Lines are printed with their unprintable characters escaped (``client/display.py``), so no
name can move the cursor, retitle or clear the terminal.

A refusal that retrying cannot change (a bad filter, a token every instance refuses) ends it:
``Watcher.run`` raises the ``Refused``, and the command prints it and exits with 1."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from orders_live.client.display import shown
from orders_live.client.live_orders import LiveEvent, LiveOrders
from orders_live.client.tokens import TokenSource
from orders_live.domain.order import OrderJson


class Watcher:
    """Prints what a LiveOrders client sees: snapshots, changes, resyncs and reconnects."""

    def __init__(
        self,
        urls: list[str],
        wanted: dict[str, Any],
        as_json: bool = False,
        out: TextIO = sys.stdout,
        token: TokenSource = None,
        limit: int | None = None,
    ) -> None:
        self.as_json, self.out = as_json, out
        self.live = LiveOrders(
            urls,
            status=wanted.get("status"),
            order_id=wanted.get("id"),
            on_event=self._print,
            token=token,
            limit=limit,
        )
        self._state = ""
        self.output_closed = False

    async def run(self) -> None:
        """Until cancelled; raises ``Refused`` (``SubscribeRefused``, ``AccessRefused``) or ``LiveOrdersDied``."""
        async with self.live:
            async for _ in self.live.events():  # printing happens in the callback, in arrival order
                if self.output_closed:
                    return  # the reader went away (`watch | head -3`): done, quietly

    def _print(self, event: LiveEvent) -> None:
        orders = self.live.orders
        if event.kind == "change" and event.change is not None:
            change = event.change
            self._say(change, describe(change, event.before))
        elif event.kind in ("snapshot", "resync"):
            payload = {
                "event": event.kind,
                "reason": event.reason,
                "orders": list(orders.values()),
                "counts": self.live.counts,
                "position": self.live.position,
            }
            why = f" ({event.reason})" if event.reason else ""
            counts = ", ".join(f"{n} {status}" for status, n in self.live.counts.items())
            held = (
                f"{len(orders)} orders"
                if len(orders) == self.live.view.total
                else f"{len(orders)} of {self.live.view.total} orders"
            )
            self._say(payload, f"-- {event.kind}{why}: {held} ({counts}), live from here")

    def _say(self, payload: dict[str, Any], text: str) -> None:
        # JSON's default escapes every character outside ASCII; a line of text escapes those
        # that are not printable (a name may hold anything a writer stored: client/display.py).
        line = json.dumps(payload, separators=(",", ":")) if self.as_json else shown(text)
        if self.output_closed:
            return
        try:
            print(line, file=self.out, flush=True)
        except BrokenPipeError:
            self.output_closed = True
            # What is still buffered would fail again when the interpreter flushes at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.out.fileno())
            os.close(devnull)


def describe(change: dict[str, Any], before: OrderJson | None) -> str:
    stamp = change["committed_at"][11:23]
    order = change["order"] or before
    if order is None:
        return f"{stamp} delete #{change['id']}"
    status = order["status"] if change["order"] else "deleted"
    if before is not None and change["order"] is not None and before["status"] != status:
        status = f"{before['status']} -> {status}"
    merged = "  (merged)" if change.get("conflated") else ""
    return (
        f"{stamp} {change['op']:<6} #{change['id']:<5} {status:<22} "
        f"{order['customer_name']} / {order['product_name']}  v{order['version']}{merged}"
    )
