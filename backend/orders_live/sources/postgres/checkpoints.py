"""Each instance's resume position, in the ``orders_live_state`` table."""

from __future__ import annotations

from orders_live.sources.postgres.connection import PostgresConnection


class PostgresCheckpoints:
    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection

    async def load_checkpoint(self, instance: str) -> str | None:
        async with self.connection.answering() as db:
            position = await db.fetchval("SELECT position FROM orders_live_state WHERE instance = $1", instance)
        return str(position) if position is not None else None

    async def save_checkpoint(self, instance: str, position: str) -> None:
        async with self.connection.answering() as db:
            await db.execute(
                "INSERT INTO orders_live_state (instance, position, saved_at) VALUES ($1, $2, now())"
                " ON CONFLICT (instance) DO UPDATE SET position = EXCLUDED.position, saved_at = EXCLUDED.saved_at",
                instance,
                position,
            )
