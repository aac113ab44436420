"""The WAL feed against PostgreSQL's own logical decoding, across the death of the slot's reader.

What it proves: a client of the WAL feed (ORDERS_LIVE_PG_CHANGES=wal) receives exactly the
changes of ``orders`` that PostgreSQL committed, in commit order, each once, and nothing rolled
back, even when the instance that reads the replication slot is killed with SIGKILL while
writers go on and another instance takes the slot over.

How: before any write, a second logical slot with the built-in ``test_decoding`` plugin is made
next to the service's. Two ``orders-live serve`` processes follow the same database; the client
is connected to the one that does not read the slot (``/metrics``: ``orders_live_wal_leader``).
Four asyncpg connections write random transactions straight to the database (1 to 3 statements,
about a fifth rolled back, some held open across other writers' commits). The reader is killed
at 40 % of the writes while one more transaction is open (it commits after the takeover); the
writers go on, and at 70 % wait for the survivor to have taken the slot over (its active_pid
changes: ``pg_replication_slots`` is printed before and after), so writes land before the kill,
between kill and takeover, and after it. At the end the reference slot's text is the truth: the
client's (op, id, version) sequence must equal it exactly. The seed is printed;
ORDERS_LIVE_REFERENCE_SEED repeats a run's writes (their interleaving is the scheduler's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from conftest import ServeProcess, free_port, until, until_async
from orders_live.domain.order import STATUSES
from orders_live.sources.postgres import PostgresOptions, postgres_source

pytestmark = [pytest.mark.database, pytest.mark.slow]

CONNECTIONS, TRANSACTIONS = 4, 60  # writers, and transactions each
KILL_AT = 0.4  # the share of each writer's transactions done when the slot's reader is killed
PAUSE_AT = 0.7  # each writer waits here for the takeover: some of the writes follow it, surely
DECODED = "SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, 'include-xids', '0', 'skip-empty-xacts', '1')"
SLOTS = """
SELECT slot_name, active, active_pid, confirmed_flush_lsn FROM pg_replication_slots
WHERE database = current_database() ORDER BY slot_name
"""
Seen = tuple[str, int, int | None]  # (op, order id, its version; None for a delete)


class Writers:
    """Random transactions straight to the database on ``CONNECTIONS`` connections at once."""

    def __init__(self, url: str, seed: int) -> None:
        self.url, self.seed = url, seed
        self.ids: list[int] = []  # orders believed to exist (another writer may delete one meanwhile)
        self.done = 0  # transactions finished, whatever their outcome
        self.committed = 0
        self.progress = asyncio.Condition()  # notified at each commit (a late commit waits on it)
        self.writing = CONNECTIONS
        self.resume = asyncio.Event()  # set once the slot is taken over
        self.counts: Counter[str] = Counter()
        self.rolled_back: set[str] = set()  # the tags (names) written by transactions rolled back

    async def run(self) -> None:
        await asyncio.gather(*(self._writer(n) for n in range(CONNECTIONS)))

    async def _writer(self, n: int) -> None:
        rng = random.Random(self.seed * 100 + n)
        db = await asyncpg.connect(self.url)
        try:
            await db.execute("SET lock_timeout = '2s'")  # two late commits holding each other's rows
            for t in range(TRANSACTIONS):
                if t == int(TRANSACTIONS * PAUSE_AT):
                    await self.resume.wait()
                await self._transaction(db, rng, f"w{n}t{t}")
                self.done += 1
                await asyncio.sleep(rng.uniform(0.005, 0.05))  # pacing, so that the writers interleave
        finally:
            self.writing -= 1
            async with self.progress:
                self.progress.notify_all()
            await db.close()

    async def _transaction(self, db: Any, rng: random.Random, tag: str) -> None:
        late, rollback = rng.random() < 0.1, rng.random() < 0.2
        inserted: list[int] = []
        transaction = db.transaction()
        await transaction.start()
        try:
            for _ in range(rng.randint(1, 3)):
                kind = rng.random()
                if not self.ids or kind < 0.35:
                    sql = "INSERT INTO orders (customer_name, product_name, status) VALUES ($1, 'P', $2) RETURNING id"
                    inserted.append(await db.fetchval(sql, tag, rng.choice(STATUSES)))
                    continue
                order_id = rng.choice(self.ids)
                if kind < 0.6:
                    done = await db.execute(
                        "UPDATE orders SET status = $2 WHERE id = $1", order_id, rng.choice(STATUSES)
                    )
                elif kind < 0.85:
                    done = await db.execute("UPDATE orders SET product_name = $2 WHERE id = $1", order_id, tag)
                else:
                    done = await db.execute("DELETE FROM orders WHERE id = $1", order_id)
                    with contextlib.suppress(ValueError):
                        self.ids.remove(order_id)
                if done.endswith(" 0"):
                    self.counts["row not found"] += 1
            mark = self.committed
            if late:  # written already; commit only after others have committed (or could not)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.5), self.progress:
                        await self.progress.wait_for(lambda: self.committed >= mark + 2 or self.writing == 1)
        except (asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError, asyncpg.SerializationError) as exc:
            await transaction.rollback()
            self.counts[type(exc).__name__] += 1
            return
        if rollback:
            await transaction.rollback()
            self.rolled_back.add(tag)
            self.counts["rolled back"] += 1
            return
        await transaction.commit()
        self.ids.extend(inserted)
        self.counts["committed"] += 1
        if late and self.committed > mark:
            self.counts["late commits (others committed in between)"] += 1
        async with self.progress:
            self.committed += 1
            self.progress.notify_all()


def reference(lines: list[str]) -> list[Seen]:
    """(op, id, version) of each change of ``public.orders`` in test_decoding's text output, e.g.
    ``table public.orders: UPDATE: old-key: id[bigint]:5 ... version[bigint]:2 new-tuple: id[bigint]:5
    ... version[bigint]:3`` (REPLICA IDENTITY FULL: an update and a delete list the old row)."""
    seen: list[Seen] = []
    for line in lines:
        found = re.match(r"table public\.orders: (INSERT|UPDATE|DELETE): (.*)", line)
        if found is None:
            continue  # BEGIN, COMMIT, and the service's own tables (its change log, its checkpoints)
        op, values = found.group(1).lower(), found.group(2).split("new-tuple: ", 1)[-1]
        columns = dict(re.findall(r"\b(id|version)\[bigint\]:(\d+)", values))
        assert set(columns) == {"id", "version"}, f"not a row of orders: {line}"
        seen.append((op, int(columns["id"]), None if op == "delete" else int(columns["version"])))
    return seen


async def slot_rows(db: Any, title: str) -> dict[str, dict[str, Any]]:
    rows = {r["slot_name"]: dict(r) for r in await db.fetch(SLOTS)}
    print(f"pg_replication_slots {title}:")
    for row in rows.values():
        print(f"  {row}")
    return rows


async def slot_active(db: Any, slot: str) -> bool:
    return bool(await db.fetchval("SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot))


async def idle(db: Any, slot: str) -> bool:
    return not await slot_active(db, slot)


async def taken_over(db: Any, session: aiohttp.ClientSession, slot: str, pid: int, survivor: ServeProcess) -> bool:
    """The slot is read again, by another connection than ``pid``, and the survivor says it reads it."""
    row = await db.fetchrow("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1", slot)
    fresh = row is not None and row["active"] and row["active_pid"] not in (None, pid)
    return bool(fresh) and await leading(session, survivor)


async def leading(session: aiohttp.ClientSession, service: ServeProcess) -> bool:
    """The instance's ``/metrics`` says it reads the slot (``orders_live_wal_leader 1``)."""
    try:
        async with session.get(f"{service.url}/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return False
    found = re.search(r"^orders_live_wal_leader(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
    return found is not None and float(found.group(1)) == 1.0


@pytest.mark.timeout(240)
async def test_the_clients_changes_are_postgresqls_own_decoding_across_a_sigkill_of_the_slots_reader(
    tmp_path: Path, postgres_url: str, listeners: Any
) -> None:
    admin = await asyncpg.connect(postgres_url)
    ref = f"ref_{uuid.uuid4().hex}"
    services: list[ServeProcess] = []
    made, slot = False, ""
    try:
        if await admin.fetchval("SHOW wal_level") != "logical":
            pytest.skip("the server's wal_level is not logical: no logical decoding to compare with")
        # The schema first (the service's slot, its publication, REPLICA IDENTITY FULL), then the
        # reference slot: both made before any write, so both see every write.
        opening = postgres_source(postgres_url, PostgresOptions(changes="wal"))
        await opening.connection.open()
        slot = opening.connection.slot
        await opening.connection.close()
        await admin.execute("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", ref)
        made = True

        env = {"DATABASE_URL": postgres_url, "ORDERS_LIVE_PG_CHANGES": "wal"}
        for n in range(2):
            port = free_port()
            services.append(ServeProcess(tmp_path / f"i{n}", port, env={**env, "ORDERS_LIVE_INSTANCE": f"i{n}"}))
        await asyncio.gather(*(service.until_ready() for service in services))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:

            async def one_leader() -> bool:
                return [await leading(session, s) for s in services].count(True) == 1

            await until_async(one_leader, 30, "exactly one instance to read the slot")
            flags = [await leading(session, s) for s in services]
            holder, survivor = (services[0], services[1]) if flags[0] else (services[1], services[0])
            # the metric is set as the stream opens: wait for the server to show the slot read
            await until_async(lambda: slot_active(admin, slot), 10, "the service's slot to be read")
            before = (await slot_rows(admin, "before the kill"))[slot]

            client = await listeners(survivor.url)  # on the instance that survives, the whole time
            ack = await client.subscribe({})
            assert ack["ok"] is True and ack["snapshot"] == 0

            seed = int(os.environ.get("ORDERS_LIVE_REFERENCE_SEED", random.randrange(1_000_000)))
            print(f"writers' seed: {seed} (ORDERS_LIVE_REFERENCE_SEED={seed} repeats it)")
            writers = Writers(postgres_url, seed)
            writing = asyncio.create_task(writers.run(), name="reference-writers")
            spanning = await asyncpg.connect(postgres_url)  # one transaction open across the kill and takeover
            try:
                total = CONNECTIONS * TRANSACTIONS
                await until(lambda: writers.done >= total * KILL_AT, 60, "writes before the kill")
                await spanning.execute("BEGIN; INSERT INTO orders (customer_name, product_name) VALUES ('S', 'P')")
                committed_at_kill = writers.committed
                holder.process.send_signal(signal.SIGKILL)
                assert await holder.until_exited(20) == -signal.SIGKILL
                await until(lambda: writers.done >= int(TRANSACTIONS * PAUSE_AT) * CONNECTIONS, 60, "writes after it")
                await until_async(
                    lambda: taken_over(admin, session, slot, before["active_pid"], survivor),
                    30,
                    "the surviving instance to take the slot over",
                )
                committed_at_takeover = writers.committed
                await spanning.execute("UPDATE orders SET status = 'shipped' WHERE customer_name = 'S'; COMMIT")
                writers.resume.set()
                await writing
            finally:
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
                await spanning.close()
            after = (await slot_rows(admin, "after the takeover"))[slot]
            assert after["active"] and after["active_pid"] != before["active_pid"]
        print(f"commits: {committed_at_kill} at the kill, {committed_at_takeover} at the takeover")
        print(f"commits in all: {writers.committed}")
        print(f"writers' outcomes: {dict(writers.counts)}")
        assert writers.committed > committed_at_takeover, "nothing was committed after the takeover"
        assert writers.counts["late commits (others committed in between)"] > 0, "no late commit happened"

        # The truth: what PostgreSQL decoded for the reference slot, committed transactions only.
        lines = [r["data"] for r in await admin.fetch(DECODED, ref)]
        expected = reference(lines)
        ops = Counter(op for op, _, _ in expected)
        print(f"PostgreSQL decoded {len(expected)} changes of orders: {dict(ops)}")
        assert len(expected) > CONNECTIONS * TRANSACTIONS / 2, f"too few changes decoded: {len(expected)}"

        def delivered() -> list[Seen]:
            return [(c["op"], c["id"], c["order"]["version"] if c["order"] else None) for c in client.changes()]

        with contextlib.suppress(AssertionError):  # too few after a minute: the comparison below says where
            await until(lambda: len(delivered()) >= len(expected), 60, f"{len(expected)} changes")
        got = delivered()
        if got != expected:
            first = next(
                (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected))
            )
            raise AssertionError(
                f"the client's changes differ from PostgreSQL's decoding at #{first} of {len(expected)}"
                f" (client has {len(got)}): client {got[first : first + 5]}, expected {expected[first : first + 5]}"
            )
        changes = client.changes()
        positions = [tuple(int(p) for p in c["position"].removeprefix("pg:").split(".")) for c in changes]
        assert positions == sorted(set(positions)), "positions repeat or go backwards"
        names = {c["order"][k] for c in changes if c["order"] for k in ("customer_name", "product_name")}
        assert not names & writers.rolled_back, "a rolled-back write reached the client"
        assert not any(c.get("conflated") for c in changes) and client.connects == 1
        assert [event for event, _ in client.received if event == "resync"] == [] and client.snapshot() == []
    finally:
        for service in services:
            await service.stop_async()
        if made:
            await admin.execute("SELECT pg_drop_replication_slot($1)", ref)  # a leftover slot keeps WAL forever
        if services and slot:  # the service's slot too, once its reader is gone (the database stays on the server)
            with contextlib.suppress(AssertionError):
                await until_async(lambda: idle(admin, slot), 10, "the service's slot to be let go")
            await admin.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1"
                " AND NOT active",
                slot,
            )
        await admin.close()
