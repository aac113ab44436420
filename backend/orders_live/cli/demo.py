"""The demo's identities: ``orders-live demo`` runs in JWT mode, with a secret of its own.

- The secret is kept under the data folder (``jwt-secret``, readable by its owner only), so
  ``orders-live token --secret-file data/jwt-secret`` mints tokens the demo accepts.
- The dashboard gets its tokens from ``POST /demo/token`` with a grant, one random grant per
  identity (a staff member and a customer): the printed URLs carry them in their fragment,
  which never reaches a server. Its tokens live five minutes, so the dashboard refreshes them
  in-band while you watch. The endpoint exists only in the demo.
- Token files for the command line (``data/tokens/*.jwt``: viewer, staff, agent, and one customer),
  written again well before they expire: ``orders-live watch --token-file`` follows them.
- The simulator writes as staff and the agent runs as ``agent``, each with a fresh token from
  a provider.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

from aiohttp import web

from orders_live.domain.identity import Role
from orders_live.identity.minting import mint_token
from orders_live.settings import Settings
from orders_live.transports.http.request_body import json_object

log = logging.getLogger(__name__)

DASHBOARD_TTL = 300.0  # seconds: short, so that a refresh happens while someone watches
FILE_TTL = 900.0  # the command line's token files, rewritten every third of that
CUSTOMER = "Ada Lovelace"  # one of the simulator's customers
FILES: dict[str, tuple[Role, str | None]] = {
    "viewer": ("viewer", None),
    "staff": ("staff", None),
    "agent": ("agent", None),
    "customer": ("customer", CUSTOMER),
}


class DemoIdentities:
    def __init__(self, settings: Settings) -> None:
        self.folder = Path(settings.data_dir)
        self.secret = settings.jwt_secret or self._secret()
        self.settings = settings.model_copy(update={"jwt_secret": self.secret})
        self.grants: dict[str, tuple[Role, str | None, str]] = {
            secrets.token_urlsafe(18): ("staff", None, "demo-staff"),
            secrets.token_urlsafe(18): ("customer", CUSTOMER, f"customer:{CUSTOMER}"),
        }

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """The demo mints its own tokens unless the service verifies with someone else's keys."""
        return settings.jwt_public_keys is None

    def token(self, role: Role, sub: str, customer: str | None = None, ttl: float = FILE_TTL) -> str:
        return mint_token(
            role,
            sub=sub,
            customer=customer,
            ttl=ttl,
            secret=self.secret,
            rules=self.settings.jwt_rules(),
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/demo/token", self._grant)]

    def urls(self, base: str) -> list[str]:
        lines = []
        for grant, (role, customer, _) in self.grants.items():
            who = f"customer {customer}" if customer else role
            lines.append(f"  as {who + ':':<24} {base}/#token-url=/demo/token&grant={grant}")
        return lines

    async def keep_token_files(self) -> None:
        """Write the command line's token files, and again every third of their lifetime."""
        folder = self.folder / "tokens"
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            for name, (role, customer) in FILES.items():
                sub = f"customer:{customer}" if customer else f"demo-{name}"
                _write_private(folder / f"{name}.jwt", self.token(role, sub, customer) + "\n")
            await asyncio.sleep(FILE_TTL / 3)

    async def _grant(self, request: web.Request) -> web.Response:
        body = await json_object(request)  # a body that is not a JSON object: 400 or 422
        grant = body.get("grant")
        found = self.grants.get(grant) if isinstance(grant, str) else None
        if found is None:
            error = {"code": "unauthorized", "message": "not a grant of this demo", "fields": {}}
            return web.json_response({"error": error}, status=401)
        role, customer, sub = found
        token = self.token(role, sub, customer, ttl=DASHBOARD_TTL)
        return web.json_response({"token": token, "expires_in": int(DASHBOARD_TTL)})

    def _secret(self) -> str:
        path = self.folder / "jwt-secret"
        if path.is_file():
            return path.read_text().strip()
        self.folder.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        _write_private(path, secret + "\n")
        log.info("the demo's JWT secret is in %s (orders-live token --secret-file %s)", path, path)
        return secret


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` at once (readers never see half a token), readable by its owner only."""
    partial = path.with_suffix(path.suffix + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    partial.replace(path)
