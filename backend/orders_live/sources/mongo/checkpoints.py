"""Each instance's resume position, in the ``orders_live_state`` collection."""

from __future__ import annotations

from orders_live.domain.order import utc_now
from orders_live.sources.mongo.connection import MongoConnection


class MongoCheckpoints:
    def __init__(self, connection: MongoConnection) -> None:
        self.connection = connection

    async def load_checkpoint(self, instance: str) -> str | None:
        async with self.connection.answering() as db:
            doc = await db.state.find_one({"_id": f"checkpoint:{instance}"})
        return str(doc["position"]) if doc and isinstance(doc.get("position"), str) else None

    async def save_checkpoint(self, instance: str, position: str) -> None:
        async with self.connection.answering() as db:
            await db.state.update_one(
                {"_id": f"checkpoint:{instance}"},
                {"$set": {"position": position, "saved_at": utc_now()}},
                upsert=True,
            )
