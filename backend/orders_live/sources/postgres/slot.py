"""The WAL feed's replication slot and publication: which feed a database uses, the slot's name,
creating and dropping it, and how much write-ahead log it holds back.

One slot per database, whatever the number of instances (a slot keeps WAL until its reader
confirms it, so N slots would keep it N times): ``orders_live_<database oid>`` (slot names are
unique in the whole server; the oid tells databases apart, and stays the same across renames).
Every statement here is parameterised; no name a user gives reaches SQL text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from orders_live.domain.source import DatabaseUnavailable

log = logging.getLogger(__name__)

Feed = Literal["wal", "triggers"]
PUBLICATION = "orders_live"
PLUGIN = "pgoutput"

_SERVER = """
SELECT current_setting('wal_level') AS wal_level,
       current_setting('max_replication_slots')::int AS max_slots,
       current_setting('max_wal_senders')::int AS max_senders,
       (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS may_replicate,
       (SELECT oid FROM pg_database WHERE datname = current_database()) AS database_oid
"""
_RETAINED = """
SELECT active, active_pid,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS unconfirmed
FROM pg_replication_slots WHERE slot_name = $1
"""


@dataclass(frozen=True, slots=True)
class FeedChoice:
    feed: Feed
    why: str
    slot: str


async def choose_feed(db: Any, wanted: Literal["auto", "wal", "triggers"]) -> FeedChoice:
    """The feed to use: ``wanted``, or for ``auto`` the WAL when the server can give it. ``wal``
    on a server that cannot is DatabaseUnavailable, with what to change (the service retries)."""
    server = await db.fetchrow(_SERVER)
    slot = f"orders_live_{server['database_oid']}"
    logical, may_replicate = server["wal_level"] == "logical", bool(server["may_replicate"])
    missing = []
    if not logical:
        missing.append(f"the server's wal_level is {server['wal_level']}, not logical")
    if not may_replicate:
        missing.append("the role may not replicate (ALTER ROLE … REPLICATION)")
    for setting, value in (("max_replication_slots", server["max_slots"]), ("max_wal_senders", server["max_senders"])):
        if value < 1:
            missing.append(f"the server's {setting} is {value}")
    if wanted == "triggers":
        return FeedChoice("triggers", "ORDERS_LIVE_PG_CHANGES=triggers", slot)
    if not missing:
        return FeedChoice("wal", f"ORDERS_LIVE_PG_CHANGES={wanted}: the server has wal_level=logical", slot)
    if wanted == "wal":
        raise DatabaseUnavailable(f"ORDERS_LIVE_PG_CHANGES=wal, but {' and '.join(missing)}")
    return FeedChoice("triggers", f"ORDERS_LIVE_PG_CHANGES=auto: {' and '.join(missing)}", slot)


async def ensure_slot(db: Any, slot: str) -> int | None:
    """Creates the slot if it is missing: the position from which it has every commit, or None
    when it was there already (or another instance made it meanwhile). Not in a transaction."""
    if await db.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", slot):
        return None
    try:
        created = await db.fetchval("SELECT lsn FROM pg_create_logical_replication_slot($1, $2)", slot, PLUGIN)
    except asyncpg.DuplicateObjectError:
        return None
    log.info("created the replication slot %s (plugin %s)", slot, PLUGIN)
    return int(created)  # asyncpg reads a pg_lsn as its 64-bit position


async def drop_slot(db: Any, slot: str) -> bool:
    """Drops the slot, ending the connection that reads it first; whether there was one."""
    row = await db.fetchrow("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot)
    if row is None:
        return False
    if row["active_pid"] is not None:
        await db.execute("SELECT pg_terminate_backend($1)", row["active_pid"])
    try:
        await db.execute("SELECT pg_drop_replication_slot($1)", slot)
    except asyncpg.ObjectInUseError as exc:  # its reader is still on its way out: the next start drops it
        log.warning("could not drop the replication slot %s yet: %s", slot, exc)
        return False
    except asyncpg.UndefinedObjectError:
        return False
    log.warning("dropped the replication slot %s (the trigger feed is in use)", slot)
    return True


@dataclass(frozen=True, slots=True)
class SlotState:
    active: bool
    active_pid: int | None
    retained: int  # bytes of WAL the slot holds back (from its restart position)
    unconfirmed: int  # bytes of WAL since the position its reader last confirmed


async def slot_state(db: Any, slot: str) -> SlotState | None:
    row = await db.fetchrow(_RETAINED, slot)
    if row is None:
        return None
    return SlotState(bool(row["active"]), row["active_pid"], int(row["retained"] or 0), int(row["unconfirmed"] or 0))


_BEHIND = """
SELECT pg_current_wal_lsn() AS now,
       (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1) AS confirmed
"""


async def unconfirmed_now(db: Any, slot: str) -> tuple[int, int | None]:
    """(the server's WAL position now, what the slot's reader confirmed; None without a slot)."""
    row = await db.fetchrow(_BEHIND, slot)
    return int(row["now"]), None if row["confirmed"] is None else int(row["confirmed"])
