"""The one place that says who a request is: a JWT (``jwt_secret`` or ``jwt_public_keys`` set),
else the shared tokens, else an open service. It also redeems stream tickets, checks a
refreshed token's holder, and watches the files that change what is accepted while the service
runs: the JWKS (keys rotate without a restart) and the revocation list, whose changes it
reports to the transports (``on_revoked``), which end the connections it names within a second.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from orders_live.domain.identity import Identity
from orders_live.identity.jwt_tokens import JwtRules, JwtVerifier
from orders_live.identity.key_set import EMPTY, KeySet, parse_key_set
from orders_live.identity.refusals import AccessDenied, forbidden, unauthorized
from orders_live.identity.revocation import is_revoked, parse_revoked
from orders_live.identity.shared_tokens import Need, SharedTokens
from orders_live.identity.tickets import StreamTickets
from orders_live.identity.watched_file import WatchedFile

log = logging.getLogger(__name__)

WATCH_EVERY = 0.25  # seconds between looks at the key and revocation files
TICKET_LABEL = b"orders-live stream tickets"
Mode = Literal["open", "shared", "jwt"]
Revoked = Callable[[Identity], bool]


@dataclass(frozen=True)
class IdentityOptions:
    read_token: str | None = None
    write_token: str | None = None
    jwt_secret: str | None = None
    jwt_public_keys: Path | None = None
    rules: JwtRules = field(default_factory=JwtRules)
    revoked: Path | None = None
    ticket_secret: str | None = None


class Authenticator:
    def __init__(self, options: IdentityOptions, clock: Callable[[], float] = time.time) -> None:
        self.options, self.clock = options, clock
        self.shared = SharedTokens(options.read_token, options.write_token)
        self.key_file: WatchedFile[KeySet] | None = None
        self.jwt: JwtVerifier | None = None
        if options.jwt_secret:
            self.jwt = JwtVerifier(options.rules, secret=options.jwt_secret)
        elif options.jwt_public_keys is not None:
            self.key_file = WatchedFile(options.jwt_public_keys, parse_key_set, EMPTY, "JWT public keys")
            self.key_file.check()
            key_file = self.key_file
            self.jwt = JwtVerifier(options.rules, keys=lambda: key_file.value)
        self.revoked_file: WatchedFile[frozenset[str]] | None = None
        if options.revoked is not None:
            self.revoked_file = WatchedFile(options.revoked, parse_revoked, frozenset(), "revoked tokens")
            self.revoked_file.check()
        self.tickets = StreamTickets(self._ticket_key(), clock=clock)
        self._listeners: list[Callable[[Revoked], None]] = []
        if self.jwt is not None and not self.shared.open:
            log.warning("JWTs are configured: the shared read and write tokens are ignored")

    @property
    def mode(self) -> Mode:
        if self.jwt is not None:
            return "jwt"
        return "open" if self.shared.open else "shared"

    @property
    def problems(self) -> list[str]:
        """What keeps identities from being checked as configured (``/readyz``)."""
        found = []
        if self.key_file is not None and not self.key_file.loaded:
            found.append(f"JWT public keys: {self.key_file.problem or 'not read'}")
        return found

    def identify(self, token: str | None, need: Need, who: str) -> Identity:
        """Who ``token`` stands for, allowed ``need`` in shared-token mode; AccessDenied otherwise."""
        if self.jwt is None:
            return self.shared.identify(token, need, who)
        if token is None:
            log.info("refused %s from %s: no token", need, who)
            raise unauthorized("a token is required")
        try:
            identity = self.jwt.verify(token)
        except AccessDenied as exc:
            log.info("refused %s from %s: %s", need, who, exc.message)  # Socket.IO warns once per address and interval
            raise
        return self._not_revoked(identity, who)

    def refreshed(self, current: Identity, token: str, who: str) -> Identity:
        """The identity of a refreshed token, which must have the same holder as ``current``."""
        fresh = self.identify(token, "read", who)
        if not current.same_holder(fresh):
            raise forbidden("a refreshed token must carry the same sub, role and customer")
        return fresh

    def mint_ticket(self, identity: Identity) -> str:
        return self.tickets.mint(identity)

    def redeem_ticket(self, ticket: str, who: str) -> Identity:
        try:
            identity = self.tickets.redeem(ticket)
        except AccessDenied as exc:
            log.info("refused a stream from %s: %s", who, exc.message)
            raise
        if identity.exp is not None and identity.exp <= self.clock():
            raise unauthorized("the token has expired")
        return self._not_revoked(identity, who)

    def revoked(self, identity: Identity) -> bool:
        return self.revoked_file is not None and is_revoked(identity, self.revoked_file.value)

    def on_revoked(self, listener: Callable[[Revoked], None]) -> None:
        """``listener(revoked)`` runs each time the revocation list changes."""
        self._listeners.append(listener)

    async def watch(self) -> None:
        """Look at the key and revocation files every ``WATCH_EVERY`` seconds (a supervised task)."""
        while True:
            self.check_files()
            await asyncio.sleep(WATCH_EVERY)

    def check_files(self) -> None:
        if self.key_file is not None:
            self.key_file.check()
        if self.revoked_file is not None and self.revoked_file.check():
            for listener in self._listeners:
                listener(self.revoked)

    def _not_revoked(self, identity: Identity, who: str) -> Identity:
        if self.revoked(identity):
            log.info("refused %s (%s) from %s: revoked", identity.sub, identity.role, who)
            raise unauthorized("the token was revoked")
        return identity

    def _ticket_key(self) -> bytes:
        options = self.options
        if options.ticket_secret:
            return hashlib.sha256(options.ticket_secret.encode()).digest()
        if options.jwt_secret:
            return hmac.new(options.jwt_secret.encode(), TICKET_LABEL, hashlib.sha256).digest()
        if self.jwt is None and not self.shared.open:
            tokens = f"{options.read_token or ''}\x00{options.write_token or ''}".encode()
            return hmac.new(tokens, TICKET_LABEL, hashlib.sha256).digest()
        if self.jwt is not None:
            log.warning(
                "stream tickets are signed with a key of this process only: with several instances,"
                " set ORDERS_LIVE_TICKET_SECRET to the same value on each"
            )
        return secrets.token_bytes(32)
