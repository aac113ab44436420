"""``orders-live bench --write-cost --database-url postgresql://…``: what orders-live costs each
write to ``orders``, with each of its PostgreSQL change feeds against none at all.

Single-row UPDATEs through asyncpg, from one connection and then from several at once, in four
columns, each case on a fresh database of the URL's server (dropped after it):

* ``none``: no orders-live at all: a plain ``orders`` table of the same shape (the shared schema's
  columns, constraints and indexes) with every trigger off (``DISABLE TRIGGER USER``);
* ``stamp``: the same table with only the contract's ``BEFORE`` trigger on (it sets ``version``
  and ``updated_at``, so each update changes indexed columns and is no longer a HOT update): what
  every feed costs before it logs anything, the floor of both;
* ``triggers``: the database opened with the trigger feed: each write logs its change in the
  writer's transaction, and commits are numbered under an advisory lock;
* ``wal``: the database opened with the WAL feed, its reader running for the whole case (it reads
  the replication slot and appends to the change log); the writers' transactions carry only the
  trigger that sets version and updated_at.

Each feed's case runs one instance, ``orders-live serve`` in a process of its own as in
production (the service's source layer is not imported here): it applies the feed, follows the
log, and with the WAL feed reads the slot. It shares the machine's cores with the database and
the writers, as it would on a one-machine deployment.

The two feeds' log must hold every write at the end of a case (``log``: how many changes it
holds, and how long after the last write the WAL reader had appended them), so a feed that did
not log is not counted as cheap. With a server on this machine it also reports the CPU, per
write, of the server (its processes: the writers' backends, the WAL sender, the instance's
connections) and of the instance, over the writers' window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import asyncpg
import psutil

from orders_live.bench.instances import start_instances, tree_cpu
from orders_live.bench.schema import schema_sql

Column = Literal["none", "stamp", "triggers", "wal"]
COLUMNS: tuple[Column, ...] = ("none", "stamp", "triggers", "wal")
LABELS = {
    "none": "none (plain table)",
    "stamp": "stamp only (version, updated_at), no feed",
    "triggers": "trigger feed",
    "wal": "WAL feed, reader running",
}
CONNECTIONS = (1, 8)
ROWS = 50  # the rows the writers update in turn
LOG_WAIT = 60.0  # seconds the log may take to hold every write once the writers stop
SLOT_WAIT = 10.0  # seconds a stopped reader's replication connection may take to leave its slot

Fresh = Callable[[str], Awaitable[str]]  # a fresh database's URL, by name


class WriteCostError(Exception):
    """The server cannot give a column (said before anything is measured), or a feed did not log."""


async def measure_write_cost(admin: str, fresh: Fresh, seconds: float = 10.0) -> dict[str, Any]:
    """Every column at every connection count, each on a fresh database; the report (``runs``
    in the order measured, each with its ratios to the ``none`` column)."""
    server = await _server(admin)
    runs: list[dict[str, Any]] = []
    for connections in CONNECTIONS:
        for column in COLUMNS:
            url = await fresh(f"orders_live_write_cost_{column}_{connections}")
            try:
                runs.append(await _case(url, column, connections, seconds))
            finally:
                await _drop(admin, url)
    for run in runs:
        none = next(r for r in runs if r["column"] == "none" and r["connections"] == run["connections"])
        run["writes_per_s_vs_none"] = run["writes_per_s"] / none["writes_per_s"]
        run["p99_vs_none"] = run["p99_us"] / none["p99_us"]
    wal = next(r for r in runs if r["column"] == "wal" and r["connections"] == max(CONNECTIONS))
    stamp = next(r for r in runs if r["column"] == "stamp" and r["connections"] == max(CONNECTIONS))
    targets = {
        "connections": wal["connections"],
        "stamp_writes_per_s_vs_none": stamp["writes_per_s_vs_none"],
        "writes_per_s_vs_stamp": wal["writes_per_s"] / stamp["writes_per_s"],
        "writes_per_s_vs_none": wal["writes_per_s_vs_none"],
        "writes_per_s_target": 0.9,
        "p99_vs_none": wal["p99_vs_none"],
        "p99_target": 1.2,
        "met": wal["writes_per_s_vs_none"] >= 0.9 and wal["p99_vs_none"] <= 1.2,
    }
    return {"seconds": seconds, "rows": ROWS, "server": server, "runs": runs, "wal_targets": targets}


async def _server(admin: str) -> dict[str, Any]:
    """The settings that shape the figures; WriteCostError when the WAL column cannot run."""
    db = await asyncpg.connect(admin)
    try:
        row = await db.fetchrow(
            "SELECT current_setting('server_version') AS version, current_setting('wal_level') AS wal_level,"
            " current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit,"
            " (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS may_replicate"
        )
    finally:
        await db.close()
    missing = []
    if row["wal_level"] != "logical":
        missing.append(f"the server's wal_level is {row['wal_level']}, not logical")
    if not row["may_replicate"]:
        missing.append("the role may not replicate (ALTER ROLE … REPLICATION)")
    if missing:
        raise WriteCostError(f"the WAL feed's column needs a server that can give it, but {' and '.join(missing)}")
    return {name: row[name] for name in ("version", "wal_level", "fsync", "synchronous_commit")}


async def _case(url: str, column: Column, connections: int, seconds: float) -> dict[str, Any]:
    if column == "none" or column == "stamp":  # two ==, not "in": mypy narrows the Literal only so
        db = await asyncpg.connect(url)
        try:
            await db.execute(schema_sql())
            await db.execute("ALTER TABLE orders DISABLE TRIGGER USER")
            if column == "stamp":
                await db.execute("ALTER TABLE orders ENABLE TRIGGER orders_live_before_write")
        finally:
            await db.close()
        await _insert_rows(url)
        run = await _writes(url, connections, seconds, {"database": await _server_process(url)})
        return {"column": column, **run, "log": None}
    async with _instance(url, column) as instance:
        await _insert_rows(url)
        await _until_logged(url, ROWS, LOG_WAIT, column)  # the WAL reader has started and caught up
        run = await _writes(url, connections, seconds, {"database": await _server_process(url), "instance": instance})
        stopped = time.monotonic()
        logged = await _until_logged(url, ROWS + run["writes"], LOG_WAIT, column)
        log = {"changes": logged - ROWS, "caught_up_s": time.monotonic() - stopped}
    return {"column": column, **run, "log": log}


@contextlib.asynccontextmanager
async def _instance(url: str, feed: Literal["triggers", "wal"]) -> AsyncIterator[psutil.Process]:
    """One instance on the database with that feed, live (its feed applied) until the block ends."""
    with tempfile.TemporaryDirectory(prefix="orders-live-write-cost-") as folder:
        deployment = await start_instances(Path(folder), url, 1, {"ORDERS_LIVE_PG_CHANGES": feed})
        try:
            yield psutil.Process(deployment.services[0].pid)
        finally:
            await deployment.stop()


async def _server_process(url: str) -> psutil.Process | None:
    """The database server's main process when it runs on this machine (its backends are its
    children), else None: then the report has no CPU figure for it."""
    db = await asyncpg.connect(url)
    try:
        backend = int(await db.fetchval("SELECT pg_backend_pid()"))
        try:
            process = psutil.Process(backend)  # while the backend is there
            return process.parent() if process.name() == "postgres" else None  # not a pid of another machine's
        except psutil.Error:
            return None
    finally:
        await db.close()


async def _insert_rows(url: str) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.execute(
            "INSERT INTO orders (customer_name, product_name) SELECT 'Bench', 'P' FROM generate_series(1, $1)", ROWS
        )
    finally:
        await db.close()


async def _until_logged(url: str, changes: int, within: float, column: Column) -> int:
    """The number of changes in the log once it holds ``changes``; WriteCostError if it does not
    within ``within`` seconds."""
    db = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + within
        while True:
            logged = int(await db.fetchval("SELECT count(*) FROM orders_live_changes"))
            if logged >= changes:
                return logged
            if time.monotonic() > deadline:
                raise WriteCostError(
                    f"the {LABELS[column]}'s log holds {logged} changes of {changes} after {within:g} s"
                )
            await asyncio.sleep(0.02)
    finally:
        await db.close()


async def _writes(
    url: str, connections: int, seconds: float, processes: dict[str, psutil.Process | None]
) -> dict[str, Any]:
    """The writers' figures, and the CPU each of ``processes`` (with its descendants, among them a
    server's backends) used over the writers' window, in µs per write."""
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    assert pool is not None
    try:
        latencies: list[float] = []
        stop = time.monotonic() + seconds

        async def writer(n: int) -> None:
            async with pool.acquire() as db:
                i = n
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    await db.execute("UPDATE orders SET product_name = $1 WHERE id = $2", f"P{i}", i % ROWS + 1)
                    latencies.append(time.perf_counter() - started)
                    i += connections

        cpu = {name: tree_cpu(process) for name, process in processes.items() if process is not None}
        started = time.monotonic()
        await asyncio.gather(*(writer(n) for n in range(connections)))
        window = time.monotonic() - started
        used = {name: tree_cpu(process) - cpu[name] for name, process in processes.items() if process is not None}
    finally:
        await pool.close()
    latencies.sort()
    return {
        "cpu_us_per_write": {name: cpu_s * 1e6 / max(len(latencies), 1) for name, cpu_s in used.items()},
        "connections": connections,
        "writes": len(latencies),
        "writes_per_s": len(latencies) / window,
        "p50_us": statistics.median(latencies) * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
    }


async def _drop(admin: str, url: str) -> None:
    """The case's replication slots (a slot left behind keeps WAL forever), once their reader
    has left them, then its database."""
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    db = await asyncpg.connect(admin)
    try:
        deadline = time.monotonic() + SLOT_WAIT
        while slots := await db.fetch(
            "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1", name
        ):
            for slot in slots:
                if slot["active_pid"] is not None and time.monotonic() > deadline:  # the server missed the close
                    await db.execute("SELECT pg_terminate_backend($1)", slot["active_pid"])
                elif slot["active_pid"] is None:
                    with contextlib.suppress(asyncpg.UndefinedObjectError, asyncpg.ObjectInUseError):
                        await db.execute("SELECT pg_drop_replication_slot($1)", slot["slot_name"])
            await asyncio.sleep(0.05)
        await db.execute(f'DROP DATABASE IF EXISTS "{name.replace(chr(34), chr(34) * 2)}" WITH (FORCE)')
    finally:
        await db.close()


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| writers | orders-live | writes/s | writes/s vs none | p50 µs | p99 µs | p99 vs none"
        " | database CPU µs/write | instance CPU µs/write |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        cpu = r["cpu_us_per_write"]
        database, instance = (f"{cpu[name]:.0f}" if name in cpu else "–" for name in ("database", "instance"))
        lines.append(
            f"| {r['connections']} | {LABELS[r['column']]} | {r['writes_per_s']:.0f} | {r['writes_per_s_vs_none']:.2f}"
            f" | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['p99_vs_none']:.2f} | {database} | {instance} |"
        )
    lines.append("")
    for r in report["runs"]:
        if r["log"] is not None:
            lines.append(
                f"- {LABELS[r['column']]}, {r['connections']} writer(s): the log held all {r['writes']:,} writes"
                f" {r['log']['caught_up_s'] * 1000:.0f} ms after the last one."
            )
    t, server = report["wal_targets"], report["server"]
    lines.append(
        f"- Target at {t['connections']} writers, WAL feed against none: writes/s ≥ 0.9× (measured"
        f" {t['writes_per_s_vs_none']:.2f}×), p99 ≤ 1.2× (measured {t['p99_vs_none']:.2f}×):"
        f" {'met' if t['met'] else 'not met'}. The stamp alone gives {t['stamp_writes_per_s_vs_none']:.2f}× of"
        f" none; the WAL feed gives {t['writes_per_s_vs_stamp']:.2f}× of the stamp alone."
    )
    lines.append(
        f"- PostgreSQL {server['version']}, wal_level={server['wal_level']}, fsync={server['fsync']},"
        f" synchronous_commit={server['synchronous_commit']}; {report['seconds']:g} s per case, {report['rows']} rows."
    )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path) -> Path:
    """``write-cost.md`` and ``write-cost.json`` in ``out``; the table's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "write-cost.json").write_text(json.dumps(report, indent=2) + "\n")
    path = out / "write-cost.md"
    path.write_text(markdown(report))
    return path
