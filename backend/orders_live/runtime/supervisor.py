"""Background tasks that are owned: stored, named, watched, restarted, cancelled and awaited.

A task that dies is noticed at once: the death is logged with the task's name and its
error (its traceback too, the first time in a row), counted, reported by ``problems`` (which
``/readyz`` shows) until the task runs again, and the task is restarted after a growing,
capped, jittered delay. A task that returns is treated as dead too: a background task is meant
to run until it is cancelled.

The service owns one (``Service.tasks``): every background task of the service runs under it,
so that each death reaches ``/readyz`` and ``orders_live_task_deaths_total``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)

HEALTHY_AFTER = 30.0  # a task that ran this long before dying starts its delays afresh


class Supervisor:
    def __init__(
        self,
        on_death: Callable[[str], None] | None = None,
        restart_first: float = 0.5,
        restart_cap: float = 10.0,
    ) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.death_listeners: list[Callable[[str], None]] = [] if on_death is None else [on_death]
        self.restart_first, self.restart_cap = restart_first, restart_cap
        self.deaths: dict[str, int] = {}
        self.down: dict[str, str] = {}  # task name -> why, while it waits to be restarted

    def start(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` as the task ``name`` until ``stop``, restarting it whenever it ends."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already running")
        self._tasks[name] = asyncio.create_task(self._keep(name, run), name=name)

    @property
    def names(self) -> list[str]:
        """The tasks started and not stopped, by name."""
        return list(self._tasks)

    @property
    def running(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    @property
    def problems(self) -> list[str]:
        return [f"task {name} died ({why}); restarting" for name, why in sorted(self.down.items())]

    async def stop(self, *names: str) -> None:
        """Cancel the tasks ``names`` (every task when none is named) and wait for each to end.

        A cancellation of the caller itself is not swallowed: it leaves this call at once (the
        tasks, already cancelled, end on their own)."""
        chosen = list(self._tasks) if not names else [name for name in names if name in self._tasks]
        tasks = [self._tasks.pop(name) for name in chosen]
        for name in chosen:
            self.down.pop(name, None)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)  # raises CancelledError only when the caller is cancelled

    async def _keep(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(f"task {name}", log, first=self.restart_first, cap=self.restart_cap, quiet_failures=0)
        while True:
            started = loop.time()
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
                first = loop.time() - started > HEALTHY_AFTER or backoff.failures == 0
                log.error("task %s died (%s)", name, why, exc_info=exc if first else None)  # one traceback a streak
            else:
                why = "it returned"
                log.error("task %s ended by itself", name)
            self.deaths[name] = self.deaths.get(name, 0) + 1
            self.down[name] = why
            for listener in self.death_listeners:
                listener(name)
            if loop.time() - started > HEALTHY_AFTER:
                backoff.failures = 0
            backoff.failures += 1
            await asyncio.sleep(backoff.next_delay())
            del self.down[name]
            log.warning("task %s restarted (death %d)", name, self.deaths[name])
