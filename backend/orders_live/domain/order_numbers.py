"""How MongoDB numbers orders, written down once for the service's store and for every program
that writes orders beside it (the bench's writers, a migration): ``mongo/README.md``'s shape.

The ids come from one counter document, ``{_id: "orders", seq: <the last id taken>}``, in the
``counters`` collection. Taking ``n`` ids is one atomic ``find_one_and_update`` of that document
with ``take(n)`` (``upsert=True``, the document *after* the update): the ids taken are
``taken(document, n)``, the ``n`` ids up to the new ``seq``. Ids so taken never collide, whoever
takes them. Plain documents only: no driver here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DATABASE = "orders_live"  # the database when the URL names none
COUNTERS = "counters"  # the collection that holds the counter
ORDERS_COUNTER = "orders"  # the counter document's _id


def counter() -> dict[str, Any]:
    """The selector of the orders' counter document."""
    return {"_id": ORDERS_COUNTER}


def take(count: int = 1) -> dict[str, Any]:
    """The update that takes ``count`` ids."""
    return {"$inc": {"seq": count}}


def taken(document: Mapping[str, Any], count: int = 1) -> range:
    """The ids a ``take(count)`` took, from the counter document it returned."""
    last = int(document["seq"])
    return range(last - count + 1, last + 1)
