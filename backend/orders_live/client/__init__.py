"""Python clients of orders-live, which reach the service only over the wire: the ``LiveOrders``
library (a live local copy of the orders for a filter), the REST client, ``watch``, the simulator.

    from orders_live.client import LiveOrders
"""

from orders_live.client.live_orders import LiveEvent, LiveOrders
from orders_live.client.refusals import AccessRefused, LiveOrdersDied, Refused, SubscribeRefused
from orders_live.client.rest import ApiRefused, OrdersClient

__all__ = [
    "AccessRefused",
    "ApiRefused",
    "LiveEvent",
    "LiveOrders",
    "LiveOrdersDied",
    "OrdersClient",
    "Refused",
    "SubscribeRefused",
]
