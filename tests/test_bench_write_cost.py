"""``orders-live bench --write-cost``: its four columns (no orders-live, the contract's stamp alone,
the trigger feed, the WAL feed with its reader running) measured on a real server, the feeds' logs holding every write,
and nothing left behind on the server (no database, no replication slot)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import asyncpg
import pytest

from orders_live.cli.bench_write_cost import write_cost as _write_cost


@pytest.mark.fast
def test_write_cost_without_a_postgresql_url_says_what_to_give(tmp_path: Path) -> None:
    for url in (None, "mongodb://127.0.0.1/x"):
        with pytest.raises(SystemExit, match="give --database-url postgresql://"):
            _write_cost(url, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.database
@pytest.mark.slow
def test_write_cost_measures_four_columns_and_leaves_nothing_behind(postgres_url: str, tmp_path: Path) -> None:
    _write_cost(postgres_url, tmp_path, seconds=0.5)

    report = json.loads((tmp_path / "write-cost.json").read_text())
    runs = report["runs"]
    assert [(r["connections"], r["column"]) for r in runs] == [
        (n, column) for n in (1, 8) for column in ("none", "stamp", "triggers", "wal")
    ]
    for run in runs:
        assert run["writes"] > 0 and 0 < run["p50_us"] <= run["p99_us"]
        assert run["writes_per_s"] > 0
    for run in (r for r in runs if r["column"] == "none"):
        assert run["log"] is None and run["writes_per_s_vs_none"] == 1.0
    for run in (r for r in runs if r["column"] == "stamp"):
        assert run["log"] is None
    for run in runs:  # the tests' server runs here: its CPU is measured, and the instance's
        expected = {"database", "instance"} if run["column"] in ("triggers", "wal") else {"database"}
        assert set(run["cpu_us_per_write"]) == expected
        assert all(us > 0 for us in run["cpu_us_per_write"].values())
    for run in (r for r in runs if r["column"] in ("triggers", "wal")):
        assert run["log"]["changes"] == run["writes"]  # the feed logged every write, no more
    wal = [r for r in runs if r["column"] == "wal"]
    assert report["wal_targets"]["connections"] == 8
    assert report["wal_targets"]["writes_per_s_vs_none"] == wal[1]["writes_per_s_vs_none"]
    stamp = next(r for r in runs if r["column"] == "stamp" and r["connections"] == 8)
    assert report["wal_targets"]["writes_per_s_vs_stamp"] == wal[1]["writes_per_s"] / stamp["writes_per_s"]
    assert report["server"]["wal_level"] == "logical"

    table = (tmp_path / "write-cost.md").read_text()
    assert table.count("| WAL feed, reader running |") == 2 and table.count("| trigger feed |") == 2
    assert table.count("| none (plain table) |") == 2
    assert table.count("| stamp only (version, updated_at), no feed |") == 2

    async def left_behind() -> list[str]:
        db = await asyncpg.connect(postgres_url)
        try:
            pattern = f"orders_live_write_cost_%_{os.getpid()}"
            databases = await db.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", pattern)
            slots = await db.fetch("SELECT slot_name FROM pg_replication_slots WHERE database LIKE $1", pattern)
            return [row[0] for row in [*databases, *slots]]
        finally:
            await db.close()

    assert asyncio.run(left_behind()) == []
