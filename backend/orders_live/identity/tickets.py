"""Stream tickets: what an EventSource, which cannot send headers, puts in its URL instead of a
token. ``POST /api/stream-tickets`` (with the token in the header) mints one; it is good for one
stream, within ``TTL`` seconds, and stands for the token's identity (the stream still ends at the
token's ``exp``).

A ticket is the identity and its own expiry, signed with HMAC-SHA256: any instance that shares
the key accepts it (behind a balancer, the ticket's POST and the stream's GET may reach two
instances). Each instance remembers the tickets it took until they expire, so a ticket opens one
stream per instance at most; a ticket copied from a URL is worth 30 seconds.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import secrets
import time
from collections.abc import Callable

from orders_live.domain.identity import ROLES, Identity
from orders_live.identity.refusals import unauthorized

TTL = 30.0
MAX_TICKET = 4_096  # characters


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StreamTickets:
    def __init__(self, key: bytes, ttl: float = TTL, clock: Callable[[], float] = time.time) -> None:
        self.key, self.ttl, self.clock = key, ttl, clock
        self._used: set[str] = set()
        self._expiries: list[tuple[float, str]] = []  # (when a used ticket's nonce may be forgotten)

    def mint(self, identity: Identity) -> str:
        payload = {
            "n": secrets.token_urlsafe(12),
            "t": round(self.clock() + self.ttl, 3),
            "sub": identity.sub,
            "role": identity.role,
            "origin": identity.origin,
            "customer": identity.customer,
            "exp": identity.exp,
            "jti": identity.jti,
            "appends": identity.appends_actions,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def redeem(self, ticket: str) -> Identity:
        """The identity of a ticket not used before and not expired; AccessDenied otherwise."""
        body, _, signature = ticket.partition(".")
        if len(ticket) > MAX_TICKET or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise unauthorized("the stream ticket is not valid")
        payload = json.loads(_unb64(body))  # ours: signed above
        now = self.clock()
        self._forget_expired(now)
        if payload["t"] < now:
            raise unauthorized("the stream ticket has expired; ask for another (POST /api/stream-tickets)")
        if payload["n"] in self._used:
            raise unauthorized("the stream ticket was already used; ask for another (POST /api/stream-tickets)")
        self._used.add(payload["n"])
        heapq.heappush(self._expiries, (payload["t"], payload["n"]))
        role = next(known for known in ROLES if known == payload["role"])
        return Identity(
            sub=payload["sub"],
            role=role,
            origin=payload["origin"],
            customer=payload["customer"],
            exp=payload["exp"],
            jti=payload["jti"],
            appends_actions=payload["appends"],
        )

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.key, body.encode(), hashlib.sha256).digest())

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] < now:
            self._used.discard(heapq.heappop(self._expiries)[1])
