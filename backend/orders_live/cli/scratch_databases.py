"""Fresh databases for the bench's runs: on the server a URL names, or on an embedded one started
here (PostgreSQL or nx-27017), each run's database named after it and this process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


async def scratch_server(url: str | None, embedded: str, folder: Path) -> tuple[str, Any, Any]:
    """(kind, a coroutine function giving a fresh database's URL by name, the embedded server
    started here or None): PostgreSQL databases are created next to ``url``'s; MongoDB's are
    named in the URL."""
    kind = "postgres" if (url or "").startswith("postgres") or (not url and embedded == "postgres") else "nx-27017"
    if url and kind == "nx-27017" and "127.0.0.1" not in url and "localhost" not in url:
        kind = "mongodb"
    server: Any = None
    if kind == "postgres":
        from orders_live.sources.postgres.embedded import EmbeddedPostgres, create_database

        if url is None:
            server = EmbeddedPostgres(folder, database="postgres")
            await server.start()
        admin = url or server.url("postgres")

        async def fresh_postgres(name: str) -> str:
            await create_database(admin, f"{name}_{os.getpid()}")
            return f"{admin.rsplit('/', 1)[0]}/{name}_{os.getpid()}"

        return kind, fresh_postgres, server
    if url is None:
        from orders_live.sources.mongo.embedded import EmbeddedMongo

        server = EmbeddedMongo(folder / "nx")
        await server.start()
        url = server.url
    base, _, query = url.partition("?")
    root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    suffix = f"?{query}" if query else ""

    async def fresh_mongo(name: str) -> str:
        return f"{root}/{name}_{os.getpid()}{suffix}"

    return kind, fresh_mongo, server
