"""A change's routes: the deliveries it makes and the rooms each one goes to.

Every change has its unscoped route: the change with the whole table's counts, to the unscoped
rooms it touches. A change also concerns one or two customers (``Routing.owner`` and, when the
order moved away from one, ``Routing.former``); for each that someone subscribes as, it has a
scoped route: to the owner's rooms, the change with that customer's counts; to the former
owner's, its leave (a delete) with the former owner's counts. So no reader is sent another
customer's order or counts, and the work per change grows with the rooms it touches, not with
the number of connections: a customer's thousand subscribers share one delivery.
"""

from __future__ import annotations

from collections.abc import Collection

from orders_live.domain.change import Change
from orders_live.domain.subscription import Routing, leave_of
from orders_live.hub.fanout import Delivery, Rooms
from orders_live.hub.index import OrderIndex

Routes = list[tuple[Delivery, Collection[str]]]


def routes_of(change: Change, routing: Routing, index: OrderIndex, rooms: Rooms) -> Routes:
    """The routes of ``change``, with the counts as the index holds them right after it."""
    routes: Routes = [(Delivery(change, index.counts()), routing.unscoped)]
    owner, former = routing.owner, routing.former
    if owner is not None and rooms.scoped(owner):
        routes.append((Delivery(change, index.customers.counts(owner)), routing.scoped_rooms(owner)))
    if former is not None and rooms.scoped(former):
        leave = Delivery(leave_of(change), index.customers.counts(former))
        routes.append((leave, routing.scoped_rooms(former)))
    return routes
