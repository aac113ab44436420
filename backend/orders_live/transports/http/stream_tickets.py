"""``POST /api/stream-tickets``: a single-use, 30-second ticket for an EventSource, which cannot
send the token in a header (``identity/tickets.py``)."""

from __future__ import annotations

from aiohttp import web

from orders_live.identity.authenticator import Authenticator
from orders_live.identity.tickets import TTL
from orders_live.transports.http.access import identity_of
from orders_live.transports.http.errors import ApiError


class StreamTicketsApi:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/stream-tickets", self.mint)]

    async def mint(self, request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"token"})  # token: the shared tokens' old way
        if unknown:
            fields = {name: "unknown query parameter" for name in unknown}
            raise ApiError(422, "validation_failed", "the query has invalid parameters", fields)
        ticket = self.authenticator.mint_ticket(identity_of(request))
        return web.json_response({"ticket": ticket, "expires_in": int(TTL)}, status=201)
