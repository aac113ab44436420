"""Who a request comes from, behind a proxy: ``X-Forwarded-For``, believed from trusted proxies only.

Everything that tells clients apart by address reads ``request.remote``: the throttle of refused
tokens, the fair share of catch-up slots, the rule that only loopback peers may write when no
token is set, the ``/readyz`` details for loopback peers, the access log. Behind nginx the
socket's peer is nginx, so without this every client would be one client: one catch-up slot
for all, one brute-forcing client throttling everyone's connects, every remote client counted
as local.

The rule (as uvicorn's and gunicorn's ``forwarded_allow_ips``): only when the socket's peer is in
``trusted_proxies`` is ``X-Forwarded-For`` read, from its right end (the hop nginx appended)
leftwards, past further trusted proxies, to the first address that is not one; that is the
client. A header from any other peer is ignored, so a client cannot choose its own address. An
entry that is not an IP address stops the walk at the last address known good.

Not aiohttp-remotes: its ``XForwardedStrict`` answers 400 to every peer that is not a trusted
proxy (direct clients and health checks included), and ``XForwardedRelaxed`` believes any peer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 16  # a longer header is read only this far from its right end


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed (addresses or networks, ``10.0.0.0/8``)."""

    def __init__(self, proxies: list[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies)

    def trusts(self, address: str | None) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the peer's, or the one its trusted proxies forwarded."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")[-MAX_HOPS:]):
            address = hop.strip()
            ip = _ip(address)
            if ip is None:
                break
            client = str(ip)
            if not self.trusts(client):
                break
        return client


def forwarded_for(proxies: TrustedProxies) -> Middleware:
    """A middleware: the handlers' ``request.remote`` is the client's address (rule above)."""

    @web.middleware
    def believe(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine (see ``errors.answered``): no frame of it is held while a request runs.
        header = request.headers.get("X-Forwarded-For")
        if header and proxies.networks:
            client = proxies.client(request.remote, header)
            if client is not None and client != request.remote:
                return handler(request.clone(remote=client))
        return handler(request)

    return believe


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
