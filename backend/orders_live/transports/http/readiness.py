"""Guards shared by the HTTP endpoints: wait (a little) for the change feed, and bound the
database's time on a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from orders_live.domain.source import DatabaseUnavailable
from orders_live.hub import Hub, NotReady
from orders_live.transports.http.errors import ApiError

log = logging.getLogger(__name__)

READY_WAIT = 5.0


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
