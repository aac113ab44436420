"""``orders-live bench --write-cost``: what each PostgreSQL change feed costs each write, on fresh
databases of the URL's server (``orders_live.bench.write_cost``)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from orders_live.cli.scratch_databases import scratch_server


def write_cost(url: str | None, out: Path, seconds: float = 10.0) -> None:
    """No orders-live, the contract's stamp alone, the trigger feed and the WAL feed (each feed
    with one instance, ``orders-live serve``, in its own process), each case on a fresh database."""
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--write-cost measures PostgreSQL's change feeds: give --database-url postgresql://…")
    from orders_live.bench.write_cost import WriteCostError, markdown, measure_write_cost, write_report

    async def run() -> dict[str, Any]:
        _, fresh, _ = await scratch_server(url, "postgres", Path(tempfile.gettempdir()))  # the URL's server
        return await measure_write_cost(url, fresh, seconds)

    try:
        report = asyncio.run(run())
    except WriteCostError as exc:
        raise SystemExit(f"--write-cost: {exc}") from None
    report["command"] = "orders-live bench --write-cost --database-url postgresql://…"
    path = write_report(report, out)
    print(markdown(report))
    print(f"written: {path}, {path.with_suffix('.json')}")
