"""Which ``Host`` a request may name: the guard against DNS rebinding.

A web page whose DNS name its owner points at 127.0.0.1 reaches this service as its own
origin (``Origin`` and ``Host`` agree, so the same-origin check passes); what gives it away is
its name in ``Host``. So every request, on every path (REST, SSE, polling, Socket.IO and
Engine.IO, the dashboard and its files, health and metrics), must name a host this service
answers for, else 421 ``host_not_allowed``, from the outermost middleware: before any handler
runs, and for paths that match no route too.

What is accepted:
- always the loopback names ``localhost``, ``127.0.0.1`` and ``[::1]`` (a rebinding page cannot
  name them: its Host is its own name, so local health checks and tools keep working);
- with ``allowed_hosts`` empty, the bind address too; when that is a wildcard (``0.0.0.0``,
  ``::``), every IP address literal (a page cannot be served from an address it does not
  hold either) and this machine's host name;
- else the listed names: ``name`` with any port, ``name:port`` with that port only;
  ``*`` accepts every host (behind a proxy that checks Host itself).

Ports are not compared for the default names: a local front (nginx, Vite's dev proxy) passes
its own port along, and a port is not what a rebinding page could get wrong. Names compare
without case and without a trailing dot. A request without ``Host`` (no browser sends one) is
not checked.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from orders_live.transports.http.errors import ApiError, answered

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
REMEMBERED = 64  # refused host names logged once each, up to this many


class AllowedHosts:
    def __init__(self, configured: list[str], bind_host: str, machine_name: str | None = None) -> None:
        """``configured``: the ``allowed_hosts`` setting; ``bind_host``: the address listened
        on; ``machine_name``: this machine's host name (read from the system when None)."""
        entries = [entry.strip() for entry in configured if entry.strip()]
        self.any_host = "*" in entries
        self.any_ip = False
        self.names: set[str] = set(LOOPBACK_NAMES)  # any port
        self.pairs: set[tuple[str, int]] = set()  # (name, port): that port only
        if entries:
            for entry in entries:
                parsed = split_host(entry)
                if parsed is not None and parsed[1] is None:
                    self.names.add(parsed[0])
                elif parsed is not None and parsed[1] is not None:
                    self.pairs.add((parsed[0], parsed[1]))
        elif bind_host.strip().lower() in WILDCARD_BINDS:
            self.any_ip = True
            self.names.add(_normal(machine_name if machine_name is not None else socket.gethostname()))
        else:
            self.names.add(
                _normal(f"[{bind_host}]" if ":" in bind_host and not bind_host.startswith("[") else bind_host)
            )

    def allows(self, host: str | None) -> bool:
        if self.any_host or host is None:
            return True
        parsed = split_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if name in self.names or (port is not None and (name, port) in self.pairs):
            return True
        return self.any_ip and _is_ip_literal(name)

    def describe(self) -> str:
        """For the start-up log: what is accepted."""
        if self.any_host:
            return "any Host (allowed_hosts is *)"
        accepted = sorted(self.names) + sorted(f"{name}:{port}" for name, port in self.pairs)
        return "Host " + ", ".join(accepted) + (" and any IP address" if self.any_ip else "")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host value (the name lower case, without a trailing dot; an IPv6
    address keeps its brackets), or None when it is not one."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, after = value.partition(":")
        port_text = after if colon else None
        if port_text is not None and ":" in port_text:
            return None
    if not name or (port_text is not None and not (port_text.isascii() and port_text.isdigit())):
        return None
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        return None
    return _normal(name), port


def _normal(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False
    return True


def host_guard(allowed: AllowedHosts) -> Middleware:
    """The outermost middleware: a Host this service does not answer for gets 421."""
    refused: set[str] = set()

    @web.middleware
    def guard(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine (see ``errors.answered``): a request let through holds no frame of it.
        host = request.headers.get("Host")
        if allowed.allows(host):
            return handler(request)
        shown = (host or "")[:100]
        if shown not in refused and len(refused) < REMEMBERED:
            refused.add(shown)
            log.warning(
                "refused a request for Host %r from %s: not in allowed_hosts (this host is logged once)",
                shown,
                request.remote or "?",
            )
        message = "this service does not answer for that Host (see allowed_hosts)"
        return answered(ApiError(421, "host_not_allowed", message).response())

    return guard
