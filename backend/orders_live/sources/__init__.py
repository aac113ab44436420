"""Where changes come from: one implementation of the ``domain.source`` contracts per database,
chosen by the URL's scheme. Drivers are imported only when their scheme is asked for."""

from __future__ import annotations

from urllib.parse import urlsplit

from orders_live.domain.source import Source
from orders_live.sources.options import MongoOptions, PostgresOptions

__all__ = ["SCHEMES", "source_from_url"]

SCHEMES = ("memory", "mongodb", "mongodb+srv", "postgresql", "postgres")


def source_from_url(url: str, mongo: MongoOptions | None = None, postgres: PostgresOptions | None = None) -> Source:
    """``memory://`` for the in-memory database, ``mongodb://``/``mongodb+srv://`` for MongoDB
    (and the embedded nx-27017), ``postgresql://`` for PostgreSQL. Options that only one
    database has are that source's own (``settings.mongo``, ``settings.postgres``); without
    them, the source reads them from the environment."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        from orders_live.sources.memory import MemoryDatabase

        return MemoryDatabase().source()
    if scheme in ("mongodb", "mongodb+srv"):
        from orders_live.sources.mongo import mongo_source

        return mongo_source(url, mongo)
    if scheme in ("postgresql", "postgres"):
        from orders_live.sources.postgres import postgres_source

        return postgres_source(url, postgres)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
