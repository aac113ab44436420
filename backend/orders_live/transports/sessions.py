"""Open connections and streams by identity: each ends when its token expires or is revoked.

A transport opens a ``Session`` for each Socket.IO connection and each event stream, with what
to do when it must end (``end(event, payload)``: say why, then close). Each session is due at its
token's ``exp`` plus a grace (Socket.IO: ``token_grace``, to let a refresh arrive; streams:
none), on one loop timer; a refresh moves it. When the revocation list changes, every session
whose token it names ends at once. Sessions also hold the identity's connection slot
(``IdentityLimits``), so a customer with 500 sockets is refused past its own limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from orders_live.domain.identity import Identity
from orders_live.identity.authenticator import Authenticator, IdentityOptions, Revoked
from orders_live.identity.limits import IdentityLimits

log = logging.getLogger(__name__)

Ending = Callable[[str, dict[str, Any]], None]  # (event, payload): tell the client, then close


class TooManyConnections(Exception):
    """The identity holds all the connections it may."""


class Session:
    def __init__(self, identity: Identity, end: Ending, grace: float) -> None:
        self.identity, self._end, self.grace = identity, end, grace
        self.timer: asyncio.TimerHandle | None = None
        self.ended = False

    def end(self, event: str, payload: dict[str, Any]) -> None:
        if self.ended:
            return
        self.ended = True
        if self.timer is not None:
            self.timer.cancel()
        try:
            self._end(event, payload)
        except Exception:
            log.exception("ending a session (%s) failed", event)


class Sessions:
    def __init__(self, authenticator: Authenticator, limits: IdentityLimits) -> None:
        self.authenticator, self.limits = authenticator, limits
        self._open: dict[Session, None] = {}
        authenticator.on_revoked(self._revoked)

    def __len__(self) -> int:
        return len(self._open)

    def open(self, identity: Identity, end: Ending, grace: float = 0.0) -> Session:
        """A session for ``identity``; TooManyConnections when it holds all of its own."""
        if not self.limits.take_connection(identity):
            raise TooManyConnections(identity.sub)
        session = Session(identity, end, grace)
        self._open[session] = None
        self._schedule(session)
        return session

    def refresh(self, session: Session, identity: Identity) -> None:
        """The same holder, a later ``exp``: the session is now due then."""
        session.identity = identity
        self._schedule(session)

    def close(self, session: Session) -> None:
        if session in self._open:
            del self._open[session]
            self.limits.give_back(session.identity)
        session.ended = True
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None

    def _schedule(self, session: Session) -> None:
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
        exp = session.identity.exp
        if exp is None or session.ended:
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + max(0.0, exp - time.time() + session.grace)
        session.timer = loop.call_at(due, self._expired, session)

    def _expired(self, session: Session) -> None:
        session.timer = None
        exp = session.identity.exp
        session.end("token_expired", {"exp": exp, "message": "the token expired"})

    def _revoked(self, revoked: Revoked) -> None:
        for session in [s for s in self._open if revoked(s.identity)]:
            log.info(
                "ending a connection of %s (%s): its token was revoked", session.identity.sub, session.identity.role
            )
            session.end("token_revoked", {"message": "the token was revoked"})


def open_sessions() -> Sessions:
    """Sessions of an open service (no tokens): nothing expires, nothing is revoked."""
    return Sessions(Authenticator(IdentityOptions()), IdentityLimits(20, 5.0, 20.0))
