"""Fast tier: behind a proxy, a client is told apart by the address its trusted proxy forwarded,
and a client that is not a trusted proxy cannot choose its own address."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from conftest import running_service, settings_for
from orders_live.transports.http.forwarded_for import TrustedProxies

pytestmark = pytest.mark.fast

ORDER = {"customer_name": "Ada", "product_name": "Lamp"}


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),  # nginx on this machine forwarded a client
        ("127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the client's own claim is not believed
        ("127.0.0.1", "203.0.113.7, 10.0.0.5", "203.0.113.7"),  # past a second, trusted, proxy
        ("127.0.0.1", "203.0.113.7, not-an-address", "127.0.0.1"),  # garbage stops the walk
        ("127.0.0.1", "::1", "::1"),  # a trusted proxy forwarded another loopback hop, and nothing more
        ("203.0.113.9", "127.0.0.1", "203.0.113.9"),  # not a proxy: its header is ignored
        ("::ffff:127.0.0.1", "2001:db8::1", "2001:db8::1"),  # a v4 peer seen through a v6 socket
        ("127.0.0.1", "", "127.0.0.1"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(peer: str, header: str, client: str) -> None:
    proxies = TrustedProxies(["127.0.0.1", "::1", "10.0.0.0/8"])
    assert proxies.client(peer, header) == client


def test_with_no_trusted_proxies_the_header_is_never_read() -> None:
    assert TrustedProxies([]).client("127.0.0.1", "203.0.113.7") == "127.0.0.1"


def test_a_trusted_proxies_entry_that_is_not_an_address_stops_the_start() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        TrustedProxies(["nginx"])


async def post(url: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(f"{url}/api/orders", json=ORDER, headers=headers) as r:
        return r.status, await r.json()


async def test_a_client_forwarded_by_a_local_proxy_is_that_client_for_the_open_write_rule() -> None:
    """With no tokens only loopback peers may write: a remote client behind nginx on this
    machine is remote (before, every client behind a local proxy could write); with
    ``trusted_proxies`` empty the header counts for nothing."""
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    async with running_service(settings_for("memory://")) as service:
        status, body = await post(service.url, forwarded)
        assert (status, body["error"]["code"]) == (403, "remote_writes_off")
        status, _ = await post(service.url, {})
        assert status == 201
    async with running_service(settings_for("memory://", trusted_proxies=[])) as service:
        status, _ = await post(service.url, forwarded)
        assert status == 201


async def test_guessed_tokens_over_rest_throttle_their_address() -> None:
    """Refused tokens over REST count against their address as Socket.IO's connects do: past
    the free ones an address's guesses get 429 ``rate_limited`` with ``Retry-After``, without
    their tokens looked at. Another address, and a request that presents no token, are not held
    back (before, every guess was answered, each with a log line)."""
    async with running_service(settings_for("memory://", read_token="read-secret-1")) as service:
        url = f"{service.url}/api/orders"

        async def guess(session: aiohttp.ClientSession, n: int) -> tuple[int, str | None, Any]:
            async with session.get(url, headers={"Authorization": f"Bearer guess-{n}"}) as r:
                return r.status, r.headers.get("Retry-After"), (await r.json())["error"]["code"]

        async with aiohttp.ClientSession() as session:
            answers = await asyncio.gather(*(guess(session, n) for n in range(40)))
            throttled = [a for a in answers if a[0] == 429]
            assert throttled and all(a[2] == "rate_limited" and int(a[1] or 0) >= 1 for a in throttled), answers
            assert {a[2] for a in answers if a[0] != 429} == {"forbidden"}, answers
            async with session.get(url) as r:  # no token: refused, not throttled
                assert (r.status, (await r.json())["error"]["code"]) == (401, "unauthorized")
        other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=other) as elsewhere:
            assert (await guess(elsewhere, 99))[0] == 403
            async with elsewhere.get(url, headers={"Authorization": "Bearer read-secret-1"}) as r:
                assert r.status == 200
