"""What every transport shares about access: allowed origins, the connection budget, and where a
Socket.IO client puts its token. Who a token stands for is ``orders_live.identity``'s to say;
each transport turns its ``AccessDenied`` into its own refusal.

A request shows its token as ``Authorization: Bearer <token>``; a Socket.IO client sends
``auth: {"token": ...}``; an EventSource sends a stream ticket (``?ticket=``), or, with shared
tokens only, ``?token=``. Refusals are logged without the token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping


class AccessPolicy:
    """Which browser origins may use the API and Socket.IO; whether, with no tokens configured,
    peers other than this machine may write (``remote_writes``)."""

    def __init__(self, allowed_origins: list[str], remote_writes: bool = False) -> None:
        self.allowed_origins = frozenset(origin.rstrip("/") for origin in allowed_origins)
        self.remote_writes = remote_writes

    def open_write_allowed(self, peer: str | None) -> bool:
        """With no tokens configured (open mode): may ``peer`` write? Only loopback, unless
        ``remote_writes``. The peer is the socket's own address (a proxy's ``X-Forwarded-For``
        is not trusted): behind a proxy on the same machine every client looks local."""
        return self.remote_writes or is_loopback(peer)

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


def is_loopback(address: str | None) -> bool:
    """``address`` (a peer's IP, as the socket gives it) is this machine's loopback."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
