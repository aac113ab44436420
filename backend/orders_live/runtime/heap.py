"""Short full collections over a large, long-lived heap: what has settled is frozen.

A full (generation 2) collection walks every tracked object of the process: at ten thousand
connections that is over a million objects, and the event loop stops for the whole walk
(docs/performance.md, "Ten thousand clients"). Most of those objects live as long as their
connection. ``gc.freeze()`` moves every object tracked so far out of the collector's sight:
later collections walk only what was created since.

``SettledHeap.run`` (a supervised task) freezes the heap once the service has started, and
again as each full collection ends (its survivors have settled; from ``gc.callbacks``, so that
the next full collection does not walk them again: while ten thousand clients connect, that
halved the time spent in full collections, 0.92 → 0.45 s). Objects frozen are still freed
when their last reference goes; only a cycle among frozen objects waits: a connection leaves
one behind when it ends (its tasks' and exceptions' frames). So once as many connections have
ended since the heap was last rebuilt as ``REBUILD_SHARE`` of those open (at least
``REBUILD_AFTER``), it is rebuilt, once no connection has ended for ``QUIET`` seconds (not in
the middle of a mass disconnect) or at the latest ``PUT_OFF`` seconds later: unfrozen,
collected in full (one pause, logged with its length), frozen again. A steady service, however
large, never pauses for a full collection; one whose clients come and go pauses about as often
as the collector's own rule would make it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds between two looks at the collector's counts
REBUILD_SHARE = 0.5  # rebuild once this share of the open connections has ended since the last
REBUILD_AFTER = 1_000  # and at least this many
QUIET = 3.0  # seconds without a connection ending before a rebuild
PUT_OFF = 60.0  # seconds a rebuild may wait for that


class SettledHeap:
    def __init__(self, ended: Callable[[], int], open_now: Callable[[], int]) -> None:
        """``ended``: connections ended since start (a count that only grows); ``open_now``:
        connections open now."""
        self.ended, self.open_now = ended, open_now
        self._ended_at_rebuild = 0
        self.rebuilds = 0
        self._frozen = False  # whether ``_settle`` freezes what a full collection kept

    def rebuild(self) -> None:
        started = time.perf_counter()
        gone = self.ended() - self._ended_at_rebuild
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._ended_at_rebuild = self.ended()
        self.rebuilds += 1
        log.info(
            "heap rebuilt (%d connections had ended): %d objects collected, %d kept, in %.0f ms",
            gone,
            found,
            gc.get_freeze_count(),
            (time.perf_counter() - started) * 1000,
        )

    def due(self) -> bool:
        gone = self.ended() - self._ended_at_rebuild
        return gone >= max(REBUILD_AFTER, REBUILD_SHARE * self.open_now())

    async def run(self) -> None:
        """Until cancelled; the first freeze at once (the service has started)."""
        gc.collect()  # start-up's garbage, not frozen for the process's life
        gc.freeze()
        self._ended_at_rebuild = self.ended()
        if self._settle not in gc.callbacks:
            gc.callbacks.append(self._settle)
        self._frozen = True
        loop = asyncio.get_running_loop()
        ended, changed, due_since = self.ended(), loop.time(), None
        while True:
            await asyncio.sleep(CHECK_EVERY)
            now = loop.time()
            if self.ended() != ended:
                ended, changed = self.ended(), now
            due = self.due()
            due_since = (due_since or now) if due else None
            if due_since is not None and (now - changed >= QUIET or now - due_since >= PUT_OFF):
                self.rebuild()
                due_since = None

    def _settle(self, phase: str, info: dict[str, int]) -> None:
        if self._frozen and phase == "stop" and info["generation"] == 2:
            gc.freeze()  # the survivors of a full collection have settled

    def release(self) -> None:
        """Give the collector its whole heap back (the service stops)."""
        self._frozen = False
        if self._settle in gc.callbacks:
            gc.callbacks.remove(self._settle)
        gc.unfreeze()
