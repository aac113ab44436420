"""The fan-out hub: follows one source, keeps an index of the orders and the last changes,
sends snapshots a page at a time, feeds rooms.

What the layers above may use: the ``Hub``, the ``Sink`` a transport implements, the
``Delivery``, ``Batch``, ``Subscription`` and ``SnapshotEnd`` it receives, the ``View`` it starts from,
``NotReady``.
"""

from orders_live.hub.fanout import Batch, Delivery, Sink, SnapshotEnd, Subscription
from orders_live.hub.hub import Hub
from orders_live.hub.position import NotReady
from orders_live.hub.views import View

__all__ = ["Batch", "Delivery", "Hub", "NotReady", "Sink", "SnapshotEnd", "Subscription", "View"]
