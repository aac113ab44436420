"""The fan-out hub: follows one source, keeps an index of the orders and the last changes,
sends snapshots a page at a time, feeds rooms.

What the layers above may use: the ``Hub``, the ``Sink`` a transport implements, the
``Delivery``, ``Batch``, ``Subscription`` and ``SnapshotEnd`` it receives, the ``View`` it starts from,
``NotReady``; for catch-ups, ``catch_up_client`` and the refusals ``PositionRefused`` and ``CatchUpBusy``.
"""

from orders_live.hub.catch_up import CatchUpBusy, PositionRefused, catch_up_client
from orders_live.hub.fanout import Batch, Delivery, Sink, SnapshotEnd, Subscription
from orders_live.hub.hub import Hub
from orders_live.hub.position import NotReady
from orders_live.hub.views import View

__all__ = [
    "Batch",
    "CatchUpBusy",
    "Delivery",
    "Hub",
    "NotReady",
    "PositionRefused",
    "Sink",
    "SnapshotEnd",
    "Subscription",
    "View",
    "catch_up_client",
]
