"""A logical replication stream on the event loop: psycopg2's ``LogicalReplicationConnection``
(asyncpg and psycopg 3 do not speak the replication protocol), driven without a thread.

psycopg2 connects in a worker thread (its connect blocks); then ``start_replication`` asks for
the slot's changes with ``pgoutput`` and our publication, and the loop watches the connection's
socket (``add_reader``): each time it is readable, ``read_message`` (which never blocks) is
called until it has nothing more. psycopg2 answers the server's keepalives and sends the
positions last given to ``confirm`` every ``status_interval`` seconds by itself.

Only this module imports psycopg2. Its errors leave as ``ReplicationLost``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
import psycopg2.extras

log = logging.getLogger(__name__)

STATUS_INTERVAL = 10  # seconds between the positions psycopg2 sends by itself
IDLE_CHECK = 0.2  # seconds of silence after which the server is asked how far it has sent


class ReplicationLost(Exception):
    """The replication connection failed or closed."""


@dataclass(frozen=True, slots=True)
class Message:
    payload: bytes
    lsn: int  # where the message's WAL data starts


class ReplicationStream:
    def __init__(self, dsn: str, slot: str, publication: str) -> None:
        self.dsn, self.slot, self.publication = dsn, slot, publication
        self._connection: psycopg2.extensions.connection | None = None
        self._cursor: psycopg2.extras.ReplicationCursor | None = None

    async def open(self) -> None:
        try:
            connection = await asyncio.to_thread(
                psycopg2.connect, self.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection
            )
        except psycopg2.Error as exc:
            raise ReplicationLost(f"{type(exc).__name__}: {str(exc).strip()}") from exc
        self._connection = connection
        cursor = connection.cursor()
        assert isinstance(cursor, psycopg2.extras.ReplicationCursor)
        self._cursor = cursor
        try:
            cursor.start_replication(
                slot_name=self.slot,
                decode=False,
                start_lsn=0,  # from the slot's confirmed position
                status_interval=STATUS_INTERVAL,
                options={"proto_version": "1", "publication_names": self.publication},
            )
        except psycopg2.Error as exc:
            self.close()
            raise ReplicationLost(f"{type(exc).__name__}: {str(exc).strip()}") from exc

    @property
    def sent_upto(self) -> int:
        """The position the server has sent everything before (its last message or keepalive)."""
        return 0 if self._cursor is None else int(self._cursor.wal_end)

    async def batches(self) -> AsyncIterator[list[Message]]:
        """The messages as they come, as many as are there each time; an empty batch at least
        every ``IDLE_CHECK`` seconds (a chance to confirm while nothing happens)."""
        cursor, connection = self._cursor, self._connection
        if cursor is None or connection is None:
            raise ReplicationLost("the stream is not open")
        loop = asyncio.get_running_loop()
        socket = connection.fileno()
        while True:
            batch = self._drain(cursor)
            if not batch:
                # Watched only while waiting: a socket left watched while the batch is appended
                # stays readable and wakes the loop at every turn (18,000 turns a second, measured).
                readable = asyncio.Event()
                loop.add_reader(socket, readable.set)
                try:
                    async with asyncio.timeout(IDLE_CHECK):
                        await readable.wait()
                except TimeoutError:
                    self._ask_position(cursor)  # the answer (a keepalive) moves sent_upto
                finally:
                    loop.remove_reader(socket)
                batch = self._drain(cursor)
            yield batch

    def ready(self) -> list[Message]:
        """The messages there now, without waiting."""
        if self._cursor is None:
            raise ReplicationLost("the stream is not open")
        return self._drain(self._cursor)

    def _drain(self, cursor: psycopg2.extras.ReplicationCursor) -> list[Message]:
        batch: list[Message] = []
        try:
            while len(batch) < 10_000:
                message = cursor.read_message()
                if message is None:
                    break
                batch.append(Message(bytes(message.payload), int(message.data_start)))
        except psycopg2.Error as exc:
            raise ReplicationLost(f"{type(exc).__name__}: {str(exc).strip()}") from exc
        return batch

    def _ask_position(self, cursor: psycopg2.extras.ReplicationCursor) -> None:
        """Asks the server for a keepalive now: it says how far it has sent (``sent_upto``)."""
        try:
            feedback = cursor.send_feedback  # untyped in types-psycopg2
            feedback(reply=True, force=True)  # type: ignore[no-untyped-call]
        except psycopg2.Error as exc:
            raise ReplicationLost(f"{type(exc).__name__}: {str(exc).strip()}") from exc

    def confirm(self, flushed: int) -> None:
        """Tells the server every commit up to ``flushed`` is durable where readers need it: the
        slot may let go of the WAL before it."""
        if self._cursor is None:
            return
        try:
            feedback = self._cursor.send_feedback  # untyped in types-psycopg2
            feedback(write_lsn=flushed, flush_lsn=flushed, apply_lsn=flushed, force=True)  # type: ignore[no-untyped-call]
        except psycopg2.Error as exc:
            raise ReplicationLost(f"{type(exc).__name__}: {str(exc).strip()}") from exc

    def close(self) -> None:
        connection, self._connection, self._cursor = self._connection, None, None
        if connection is not None:
            try:
                connection.close()
            except psycopg2.Error:
                log.debug("closing the replication connection failed", exc_info=True)
