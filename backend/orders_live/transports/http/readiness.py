"""Guards shared by the HTTP endpoints: wait (a little) for the change feed, bound the
database's time on a request, and ask the database whether it answers at most once a second
(``/readyz``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from orders_live.domain.source import Connection, DatabaseUnavailable
from orders_live.hub import Hub, NotReady
from orders_live.transports.feed_requests import READY_WAIT
from orders_live.transports.http.errors import ApiError

log = logging.getLogger(__name__)

PING_EVERY = 1.0  # seconds a database ping's answer serves /readyz


async def feed_ready(hub: Hub) -> None:
    """Reads wait (a little) for the change feed; past that, 503."""
    try:
        await hub.wait_ready(READY_WAIT)
    except NotReady as exc:
        raise ApiError(503, "unavailable", str(exc)) from None


class DatabaseGuard:
    """Each request's database work ends within ``timeout`` seconds, else 503
    ``database_unavailable``. An outage is logged once when it starts and once when it ends."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.failing = False

    @contextlib.asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout):
                yield
        except TimeoutError:
            self._failed(f"no answer within {self.timeout:g}s")
            raise ApiError(
                503,
                "database_unavailable",
                f"the database did not answer within {self.timeout:g}s; a write may or may not have been applied",
            ) from None
        except DatabaseUnavailable as exc:
            self._failed(str(exc))
            raise ApiError(503, "database_unavailable", "the database is not answering; try again") from None
        except NotReady as exc:  # the feed fell behind what the database showed
            raise ApiError(503, "unavailable", str(exc)) from None
        else:
            if self.failing:
                log.warning("the database answers requests again")
                self.failing = False

    def _failed(self, why: str) -> None:
        if not self.failing:
            log.warning("database requests are failing (%s): answering 503 until it answers", why)
            self.failing = True


class DatabasePing:
    """Whether the database answers (``Connection.ping``, itself bounded to 1 s), asked at most
    once every ``every`` seconds: calls within that get the last answer, and calls that arrive
    while a ping is out wait for it rather than sending their own. A public ``/readyz`` polled
    in a loop thus costs the database one round trip a second."""

    def __init__(
        self, connection: Connection, every: float = PING_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.connection, self.every, self.clock = connection, every, clock
        self.lock = asyncio.Lock()
        self.problem: str | None = None
        self.checked_at: float | None = None

    async def problem_now(self) -> str | None:
        """None when the database answered; else ``database: <error type>``."""
        if self._fresh():
            return self.problem
        async with self.lock:
            if not self._fresh():  # else a call ahead of this one has just asked
                self.problem = await self._ping()
                self.checked_at = self.clock()
            return self.problem

    def _fresh(self) -> bool:
        return self.checked_at is not None and self.clock() - self.checked_at < self.every

    async def _ping(self) -> str | None:
        try:
            await self.connection.ping()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever the driver raises: the answer is "not answering"
            return f"database: {type(exc).__name__}"
        return None
