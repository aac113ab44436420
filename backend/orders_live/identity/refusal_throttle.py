"""Refused authentications, per client address: what guessing tokens costs, and how it is logged.

An address's first ``FREE_REFUSALS`` refusals cost nothing. Past them its attempts take turns:
each waits until the previous one's turn plus a delay that doubles with every further refusal
(``FIRST_DELAY``, capped at ``MAX_DELAY``), so parallel attempts are spaced as sequential ones
are. An attempt whose turn is more than ``max_wait`` away is refused at once (``Throttled``),
without its token being looked at. An address with no refusal for ``FORGET_AFTER`` starts afresh;
success resets nothing (a client holding one good token cannot use it to guess others).

Refusals are logged once per address and interval: the first at once, the others as one summary
line when the interval (``SUMMARY_EVERY``) ends, instead of one line per attempt.

The transport says who (the client's address) and why each was refused; nothing here knows a
transport.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

FREE_REFUSALS = 10
FIRST_DELAY = 0.5  # seconds between an address's attempts after its free refusals; doubles
MAX_DELAY = 30.0
FORGET_AFTER = 600.0  # seconds without a refusal after which an address starts afresh
SUMMARY_EVERY = 10.0  # seconds: the interval of the summary lines
MAX_ADDRESSES = 10_000  # addresses remembered at once (the oldest are forgotten past it)
THROTTLED = "too many refused attempts"


class Throttled(Exception):
    """The address's next turn is too far off: refused without a look at the token."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"{THROTTLED}; try again in {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass
class _Address:
    refusals: int = 0
    last: float = 0.0  # when it was last refused
    next_turn: float = 0.0  # when its next attempt may be looked at
    unlogged: Counter[str] = field(default_factory=Counter)  # refusals since the interval began, by reason
    interval: asyncio.TimerHandle | None = None  # set while an interval is open


class RefusalThrottle:
    def __init__(
        self,
        attempt: str = "connect",
        max_wait: float = 2.0,
        summary_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempt, self.max_wait, self.clock = attempt, max_wait, clock
        self.summary_every = SUMMARY_EVERY if summary_every is None else summary_every
        self._addresses: dict[str, _Address] = {}

    def delay(self, refusals: int) -> float:
        """Seconds between the turns of an address refused ``refusals`` times."""
        if refusals < FREE_REFUSALS:
            return 0.0
        return min(MAX_DELAY, FIRST_DELAY * 2.0 ** (refusals - FREE_REFUSALS))

    async def turn(self, who: str) -> None:
        """Returns when an attempt from ``who`` may be looked at: at once unless the address has
        been refused often; Throttled when that is more than ``max_wait`` away."""
        address = self._current(who)
        if address is None:
            return
        now = self.clock()
        turn = max(now, address.next_turn)
        if turn - now > self.max_wait:
            self._log(who, address, THROTTLED)
            raise Throttled(turn - now)
        address.next_turn = turn + self.delay(address.refusals)
        if turn > now:
            await asyncio.sleep(turn - now)

    def refused(self, who: str, reason: str) -> None:
        """An attempt from ``who`` was refused (``reason``: the sentence, never the token)."""
        address = self._current(who)
        if address is None:
            if len(self._addresses) >= MAX_ADDRESSES:
                self._forget(next(iter(self._addresses)))
            address = self._addresses[who] = _Address()
        now = self.clock()
        address.refusals += 1
        address.last = now
        address.next_turn = max(address.next_turn, now + self.delay(address.refusals))
        self._log(who, address, reason)

    def close(self) -> None:
        """Log what is still unlogged; forget every address."""
        for who in list(self._addresses):
            self._summarise(who, reopen=False)
            self._forget(who)

    def _current(self, who: str) -> _Address | None:
        address = self._addresses.get(who)
        if address is not None and self.clock() - address.last > FORGET_AFTER:
            self._summarise(who, reopen=False)
            self._forget(who)
            return None
        return address

    def _forget(self, who: str) -> None:
        address = self._addresses.pop(who, None)
        if address is not None and address.interval is not None:
            address.interval.cancel()

    def _log(self, who: str, address: _Address, reason: str) -> None:
        if address.interval is not None:
            address.unlogged[reason] += 1
            return
        log.warning("refused a %s from %s: %s", self.attempt, who, reason)
        self._open_interval(who, address)

    def _open_interval(self, who: str, address: _Address) -> None:
        address.interval = asyncio.get_running_loop().call_later(self.summary_every, self._summarise, who)

    def _summarise(self, who: str, reopen: bool = True) -> None:
        """The interval ended: one line for what it refused after its first; a quiet interval
        closes it (the next refusal is logged at once)."""
        address = self._addresses.get(who)
        if address is None:
            return
        address.interval = None
        if not address.unlogged:
            return
        total = sum(address.unlogged.values())
        reasons = ", ".join(f"{reason}: {n}" for reason, n in address.unlogged.most_common())
        wait = max(0.0, address.next_turn - self.clock())
        log.warning(
            "refused %d more %ss from %s in the last %g s (%s); its next attempt is looked at in %.0f s",
            total,
            self.attempt,
            who,
            self.summary_every,
            reasons,
            wait,
        )
        address.unlogged.clear()
        if reopen:
            self._open_interval(who, address)
