"""MongoDB (and the embedded nx-27017) through PyMongo's async API.

``connection`` owns the client and what differs between the two servers; ``store``,
``feed``, ``checkpoints`` and ``actions`` implement one contract each over it; ``documents`` is the
boundary that turns raw documents into orders and changes; ``embedded`` runs nx-27017.
"""

from __future__ import annotations

from orders_live.domain.source import Source
from orders_live.sources.mongo.actions import MongoActionLog
from orders_live.sources.mongo.checkpoints import MongoCheckpoints
from orders_live.sources.mongo.connection import MongoConnection
from orders_live.sources.mongo.feed import MongoChangeFeed
from orders_live.sources.mongo.store import MongoOrderStore
from orders_live.sources.options import MongoOptions

__all__ = ["MongoConnection", "MongoOptions", "mongo_source"]


def mongo_source(url: str, options: MongoOptions | None = None) -> Source:
    connection = MongoConnection(url, options or MongoOptions())
    return Source(
        connection=connection,
        store=MongoOrderStore(connection),
        feed=MongoChangeFeed(connection),
        checkpoints=MongoCheckpoints(connection),
        actions=MongoActionLog(connection),
    )
