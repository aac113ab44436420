"""Who may do what: optional read and write tokens, allowed origins, connection limits.

Shared by every transport; each turns an ``AccessDenied`` into its own refusal.

Tokens are off unless configured. A request shows its token as ``Authorization: Bearer
<token>``, or as ``?token=`` where a client cannot set headers (EventSource); a Socket.IO
client sends ``auth: {"token": ...}``. Missing → 401, wrong → 403. Refusals are logged
without the token.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from typing import Literal

log = logging.getLogger(__name__)

Need = Literal["read", "write"]


class AccessDenied(Exception):
    """A refusal, as each transport will say it: an HTTP status, a code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AccessPolicy:
    def __init__(self, read_token: str | None, write_token: str | None, allowed_origins: list[str]) -> None:
        self.read_token, self.write_token = read_token, write_token
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)

    def check(self, token: str | None, need: Need, who: str) -> None:
        """Raises AccessDenied (401/403) unless ``token`` allows ``need``."""
        if need == "read":
            wanted = [t for t in (self.read_token, self.write_token) if t] if self.read_token else []
        else:  # writes need the write token; with only a read token set, that one
            wanted = [self.write_token] if self.write_token else [t for t in (self.read_token,) if t]
        if not wanted:
            return  # open: no token configured for this
        if token is None:
            log.info("refused %s from %s: no token", need, who)
            raise AccessDenied(401, "unauthorized", f"a {need} token is required")
        if not any(hmac.compare_digest(token.encode(), t.encode()) for t in wanted):
            log.warning("refused %s from %s: wrong token", need, who)
            raise AccessDenied(403, "forbidden", f"this token does not allow {need}s")

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True  # not a browser's cross-site request
        if host is not None and origin.split("://", 1)[-1] == host:
            return True  # same origin
        return origin.rstrip("/") in self.allowed_origins


def auth_token(auth: object, query: Mapping[str, str]) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    return query.get("token") or None


class RateLimit:
    """A token bucket: ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float = 10) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class ConnectionBudget:
    """Connections open at once (Socket.IO and SSE together), up to ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open = max(0, self.open - 1)
