"""The agent's action log in the ``agent_actions`` collection.

``seq`` is one past the last appended, kept unique by an index: an append tries the seq after
the ``counters`` document's and, when another append inserted that one first, the next, then
moves the counter on (``$max``). A seq is tried only once the one before it is visible (it
was read from the counter, set after its insert, or found taken), so records become visible
in seq order, with no gap: a reader of ``after`` never skips one that commits late (which an
``$inc`` taken before the insert allowed under concurrent appends).

At most one ``action`` per (trigger, order_id, order_version) without a partial index
(nx-27017 has none): such a record's ``_id`` is ``action:<trigger>:<order_id>:<order_version>``,
so a second insert fails on ``_id``; other records get an ObjectId.
``arguments`` is kept as its JSON text (``arguments_json``): any key the model chose ("$x",
"a.b") and any JSON number (past 64 bits) round-trips, which a subdocument would not.
``recorded_at`` is set at insert (nx-27017 stores a ``$set`` date as a string).

Retention (``trim``) deletes the oldest records by seq, a batch of ``_id``s at a time. A
trimmed action's ``_id`` is free again, as a trimmed row's key is on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from orders_live.domain.agent_action import (
    EVERY_ACTION,
    KINDS,
    TRIGGERS,
    ActionFilter,
    AgentActionJson,
    NewAgentAction,
    encode_arguments,
)
from orders_live.domain.order import iso_millis, utc_now
from orders_live.domain.source import AlreadyRecorded, DatabaseUnavailable
from orders_live.sources.mongo.connection import MongoConnection
from orders_live.sources.mongo.documents import parse_date

log = logging.getLogger(__name__)

COUNTER = "agent_actions"  # the _id of this log's document in ``counters``
TRIM_BATCH = 1_000  # records deleted per delete_many
MAX_TRIES = 1_000  # seqs an append tries before it gives up (as many appends got in first)


def action_id(trigger: str, order_id: int, order_version: int) -> str:
    return f"action:{trigger}:{order_id}:{order_version}"


def _selector(filters: ActionFilter) -> dict[str, Any]:
    """Typed values compared for equality: never an operator."""
    selector: dict[str, Any] = {}
    if filters.kind is not None:
        selector["kind"] = str(filters.kind)
    if filters.trigger is not None:
        selector["trigger"] = str(filters.trigger)
    if filters.order_id is not None:
        selector["order_id"] = int(filters.order_id)
    if filters.order_version is not None:
        selector["order_version"] = int(filters.order_version)
    if filters.customer is not None:
        selector["customer_name"] = str(filters.customer)
    return selector


def _optional_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def record_of(doc: dict[str, Any]) -> AgentActionJson:
    """A stored document as a record; ValueError if it is not one."""
    kind, trigger = doc.get("kind"), doc.get("trigger")
    if kind not in KINDS or trigger not in TRIGGERS or _optional_int(doc.get("seq")) is None:
        raise ValueError("not an agent action record")
    arguments = json.loads(doc.get("arguments_json") or "{}")
    return {
        "seq": int(doc["seq"]),
        "kind": kind,
        "trigger": trigger,
        "order_id": _optional_int(doc.get("order_id")),
        "order_version": _optional_int(doc.get("order_version")),
        "tool": _optional_str(doc.get("tool")),
        "arguments": arguments if isinstance(arguments, dict) else {},
        "message": _optional_str(doc.get("message")),
        "reason": _optional_str(doc.get("reason")),
        "model": _optional_str(doc.get("model")),
        "customer_name": _optional_str(doc.get("customer_name")),
        "recorded_at": iso_millis(parse_date(doc.get("recorded_at"))),
    }


def _records(docs: list[dict[str, Any]]) -> list[AgentActionJson]:
    records = []
    for doc in docs:
        try:
            records.append(record_of(doc))
        except (KeyError, ValueError) as exc:
            log.warning("skipping a document that is not an agent action (_id=%r): %s", doc.get("_id"), exc)
    return records


class MongoActionLog:
    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection

    @property
    def collection(self) -> AsyncCollection[dict[str, Any]]:
        return self.connection.agent_actions  # the client is built by open()

    async def append(self, new: NewAgentAction, customer_name: str | None = None) -> AgentActionJson:
        key = new.unique_key
        doc_id: Any = ObjectId() if key is None else action_id(*key)
        doc = {
            "_id": doc_id,
            "kind": new.kind,
            "trigger": new.trigger,
            "order_id": new.order_id,
            "order_version": new.order_version,
            "tool": new.tool,
            "arguments_json": encode_arguments(new.arguments),
            "message": new.message,
            "reason": new.reason,
            "model": new.model,
            "customer_name": customer_name,
            "recorded_at": utc_now(),  # at insert: a $set date would be a string on nx-27017
        }
        async with self.connection.answering() as db:
            if key is not None:  # the usual refusal, without trying a seq
                existing = await db.agent_actions.find_one({"_id": doc_id})
                if existing is not None:
                    raise AlreadyRecorded(record_of(existing))
            seq = await self._next_seq(db, 0)
            for _ in range(MAX_TRIES):
                try:
                    await db.agent_actions.insert_one({**doc, "seq": seq})
                    break
                except DuplicateKeyError:
                    existing = await db.agent_actions.find_one({"_id": doc_id}) if key is not None else None
                    if existing is not None:
                        raise AlreadyRecorded(record_of(existing)) from None
                    seq = await self._next_seq(db, seq)  # another append has this seq: the next one
            else:
                raise DatabaseUnavailable(f"no free seq for an agent action after {MAX_TRIES} tries")
            await db.counters.update_one({"_id": COUNTER}, {"$max": {"seq": seq}}, upsert=True)
        return record_of({**doc, "seq": seq})

    @staticmethod
    async def _next_seq(db: MongoConnection, taken: int) -> int:
        """The seq to try: past the counter (the last seq appended, or a little behind it) and
        past ``taken``, a seq found taken, hence visible."""
        counter = await db.counters.find_one({"_id": COUNTER})
        last = int(counter["seq"]) if counter is not None and isinstance(counter.get("seq"), int) else 0
        return max(last, taken) + 1

    async def recent(self, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        async with self.connection.answering():
            docs = await self.collection.find(_selector(filters)).sort("seq", -1).limit(limit).to_list()
        return _records(docs[::-1])

    async def after(self, seq: int, limit: int, filters: ActionFilter = EVERY_ACTION) -> list[AgentActionJson]:
        selector = {**_selector(filters), "seq": {"$gt": int(seq)}}
        async with self.connection.answering():
            docs = await self.collection.find(selector).sort("seq", 1).limit(limit).to_list()
        return _records(docs)

    async def trim(self, keep: int, keep_seconds: float) -> int:
        """Records are appended in time order, so the ones to delete are those up to one
        seq: below the newest ``keep``, or the newest one too old."""
        cutoff = utc_now() - timedelta(seconds=keep_seconds)
        removed = 0
        async with self.connection.answering():
            upto = 0
            beyond = await self.collection.find({}, {"seq": 1}).sort("seq", -1).skip(keep).limit(1).to_list()
            if beyond:
                upto = int(beyond[0]["seq"])
            old = (
                await self.collection.find({"recorded_at": {"$lte": cutoff}}, {"seq": 1})
                .sort("seq", -1)
                .limit(1)
                .to_list()
            )
            if old:
                upto = max(upto, int(old[0]["seq"]))
            while upto > 0:
                batch = (
                    await self.collection.find({"seq": {"$lte": upto}}, {"_id": 1})
                    .sort("seq", 1)
                    .limit(TRIM_BATCH)
                    .to_list()
                )
                if not batch:
                    break
                result = await self.collection.delete_many({"_id": {"$in": [doc["_id"] for doc in batch]}})
                removed += result.deleted_count
                if len(batch) < TRIM_BATCH:
                    break
        return removed
