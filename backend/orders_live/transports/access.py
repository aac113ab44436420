"""What every transport shares about access: allowed origins, the connection budget, and where a
Socket.IO client puts its token. Who a token stands for is ``orders_live.identity``'s to say;
each transport turns its ``AccessDenied`` into its own refusal.

A request shows its token as ``Authorization: Bearer <token>``; a Socket.IO client sends
``auth: {"token": ...}``; an EventSource sends a stream ticket (``?ticket=``), or, with shared
tokens only, ``?token=``. Refusals are logged without the token.
"""

from __future__ import annotations

from collections.abc import Mapping


class AccessPolicy:
    """Which browser origins may use the API and Socket.IO."""

    def __init__(self, allowed_origins: list[str]) -> None:
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True  # not a browser's cross-site request
        if host is not None and origin.split("://", 1)[-1] == host:
            return True  # same origin
        return origin.rstrip("/") in self.allowed_origins


def auth_token(auth: object, query: Mapping[str, str], urls_allowed: bool) -> str | None:
    """A Socket.IO client's token: ``auth.token``, or (shared tokens only) ``?token=``."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    return (query.get("token") or None) if urls_allowed else None


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
