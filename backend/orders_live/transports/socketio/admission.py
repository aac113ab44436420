"""Who may hold a Socket.IO connection, and for how long: its token's identity, its identity's
own connection slot (taken before the budget every client shares, which its socket holds:
``engine_sessions``), its subscribe rate (per identity for JWTs, per connection for shared
tokens), and in-band refreshes of its token. Refused tokens, at connect and at refresh, go
through the address's ``RefusalThrottle``: its attempts take turns, spaced more with each
refusal, and its refusals are logged as one line per interval.

The gateway asks ``admit`` at connect (a refusal is a ``ConnectionRefusedError`` with the code
and a sentence), ``rate_allows`` at each subscribe or refresh, ``refresh`` for a
``refresh_token``, and ``release`` when the connection goes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from socketio.exceptions import ConnectionRefusedError

from orders_live.domain.identity import Identity
from orders_live.identity.limits import RateLimit
from orders_live.identity.refusal_throttle import RefusalThrottle, Throttled
from orders_live.identity.refusals import AccessDenied
from orders_live.transports.access import auth_token
from orders_live.transports.sessions import Ending, Session, Sessions, TooManyConnections

log = logging.getLogger(__name__)


@dataclass
class Admitted:
    """A connection let in: who it is, its session (which ends it with its token), its address."""

    identity: Identity
    session: Session
    who: str
    rate: RateLimit | None  # its own subscribe rate, when its identity is not counted per sub


class Admission:
    def __init__(
        self, sessions: Sessions, subscribe_rate: float, token_grace: float, refusals: RefusalThrottle
    ) -> None:
        self.sessions, self.refusals = sessions, refusals
        self.authenticator, self.limits = sessions.authenticator, sessions.limits
        self.subscribe_rate, self.token_grace = subscribe_rate, token_grace

    async def admit(
        self, environ: dict[str, Any], auth: Any, who: str, end: Ending, take_slot: Callable[[], bool]
    ) -> Admitted:
        """Raises ConnectionRefusedError (unauthorized, forbidden, rate_limited,
        too_many_connections). ``take_slot``: whether the socket holds a slot of the budget."""
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        token = auth_token(auth, query, urls_allowed=self.authenticator.mode != "jwt")
        try:
            await self.refusals.turn(who)
        except Throttled as exc:
            retry_after = math.ceil(exc.retry_after)
            raise ConnectionRefusedError(str(exc), {"code": "rate_limited", "retry_after": retry_after}) from None
        try:
            identity = self.authenticator.identify(token, "read", who)
        except AccessDenied as exc:
            self.refusals.refused(who, exc.message)
            raise ConnectionRefusedError(exc.message, {"code": exc.code}) from None
        limit = self.limits.max_connections
        try:  # the identity's own limit first: it cannot take the budget everyone shares
            session = self.sessions.open(identity, end, self.token_grace)
        except TooManyConnections:
            log.info("refused a connection of %s from %s: its %d connections are open", identity.sub, who, limit)
            message = f"this identity has {limit} connections open already"
            raise ConnectionRefusedError(message, {"code": "too_many_connections"}) from None
        if not take_slot():
            self.sessions.close(session)
            log.info("refused a connection from %s: the server is full", who)
            raise ConnectionRefusedError("the server is full", {"code": "too_many_connections"})
        own_rate = None if self.limits.counted(identity) else RateLimit(self.subscribe_rate)
        return Admitted(identity, session, who, own_rate)

    def release(self, admitted: Admitted) -> None:
        self.sessions.close(admitted.session)

    def rate_allows(self, admitted: Admitted) -> bool:
        """Subscribes (and refreshes) count per identity, or, for shared tokens, per connection."""
        allowed = self.limits.subscribe_allowed(admitted.identity)
        if allowed is not None:
            return allowed
        return admitted.rate is None or admitted.rate.allow()

    async def refresh(self, admitted: Admitted, payload: Any) -> dict[str, Any]:
        """A new token for the same holder: the connection's ``exp`` moves; its subscriptions are
        untouched. A refused refresh leaves the old token in force. The ack, or an error ack."""
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            return refusal("unauthorized", "a token is required", {"token": "required: the new token, a string"})
        try:
            await self.refusals.turn(admitted.who)
        except Throttled as exc:
            return refusal("rate_limited", str(exc))
        try:
            fresh = self.authenticator.refreshed(admitted.identity, token, admitted.who)
        except AccessDenied as exc:
            self.refusals.refused(admitted.who, exc.message)
            return refusal(exc.code, exc.message)
        admitted.identity = fresh
        self.sessions.refresh(admitted.session, fresh)
        return {"ok": True, "exp": fresh.exp}


def refusal(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """An error ack."""
    return {"ok": False, "error": {"code": code, "message": message, "fields": fields or {}}}
