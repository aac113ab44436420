"""The fan-out hub: follows one source, keeps the mirror and history, feeds rooms.

What the layers above may use: the ``Hub``, the ``Sink`` a transport implements, the
``Delivery`` and ``Subscription`` it receives, the ``View`` it starts from, ``NotReady``.
"""

from orders_live.hub.fanout import Delivery, Sink, Subscription
from orders_live.hub.hub import Hub
from orders_live.hub.position import NotReady
from orders_live.hub.views import View

__all__ = ["Delivery", "Hub", "NotReady", "Sink", "Subscription", "View"]
