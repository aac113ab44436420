"""``orders-live bench --write-cost``: what each PostgreSQL change feed costs each write. The
feeds are opened here, through the source (the bench package may not import it), and handed to
``orders_live.bench.write_cost``, which talks only to the database."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from orders_live.cli.scratch_databases import scratch_server


def write_cost(url: str | None, out: Path, seconds: float = 10.0) -> None:
    """No orders-live, the trigger feed and the WAL feed (its reader running here, as a task of
    this process, as one instance runs it in production), each case on a fresh database."""
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--write-cost measures PostgreSQL's change feeds: give --database-url postgresql://…")
    import contextlib
    from collections.abc import AsyncIterator
    from typing import Literal

    from orders_live.bench.write_cost import WriteCostError, markdown, measure_write_cost, write_report
    from orders_live.sources.postgres import PostgresOptions, postgres_source

    @contextlib.asynccontextmanager
    async def opened(database: str, changes: Literal["triggers", "wal"]) -> AsyncIterator[None]:
        source = postgres_source(database, PostgresOptions(changes=changes))
        await source.connection.open()
        reader: asyncio.Future[None] | None = None
        if changes == "wal":  # the job as the service runs it: read the slot, append to the log
            reader = asyncio.ensure_future(source.jobs["postgres.wal"]())
        try:
            yield
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            await source.connection.close()

    async def run() -> dict[str, Any]:
        _, fresh, _ = await scratch_server(url, "postgres", Path(tempfile.gettempdir()))  # the URL's server
        return await measure_write_cost(url, fresh, opened, seconds)

    try:
        report = asyncio.run(run())
    except WriteCostError as exc:
        raise SystemExit(f"--write-cost: {exc}") from None
    report["command"] = "orders-live bench --write-cost --database-url postgresql://…"
    path = write_report(report, out)
    print(markdown(report))
    print(f"written: {path}, {path.with_suffix('.json')}")
