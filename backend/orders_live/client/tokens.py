"""A client's token: a fixed string, a provider (a callable, plain or async, asked each time a
token is needed), or a file re-read when it changes (``--token-file``: an identity provider's
sidecar, or ``orders-live token > file`` run again, writes the next token there).

``Tokens`` also says when a JWT should be refreshed: at 80 % of its remaining lifetime, but
never more than a minute before its ``exp`` (PyJWT reads ``exp`` without verifying: the client only
needs to know when, the service verifies). A token that is not a JWT (a shared token) never
expires.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import jwt

REFRESH_SHARE = 0.8  # refresh once this share of the remaining lifetime has passed
REFRESH_LEAD = 60.0  # but no earlier than this many seconds before exp


class TokenFile:
    """A token in a file (surrounding whitespace ignored), re-read when the file changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._token = ""

    def __call__(self) -> str:
        info = os.stat(self.path)
        stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
        if stamp != self._stamp:
            self._token, self._stamp = self.path.read_text().strip(), stamp
        if not self._token:
            raise ValueError(f"the token file {self.path} is empty")
        return self._token


Provider = Callable[[], str | Awaitable[str]]
TokenSource = str | Provider | None


def token_source(token: str | None, token_file: str | Path | None) -> TokenSource:
    """A command line's ``--token-file`` (followed as it changes), else its ``--token``."""
    return TokenFile(token_file) if token_file else token


class Tokens:
    def __init__(self, source: TokenSource) -> None:
        self.source = source

    @property
    def fixed(self) -> bool:
        """A token that cannot change (or none): refreshing it would get the same one."""
        return self.source is None or isinstance(self.source, str)

    async def get(self) -> str | None:
        """The token to use now (a provider is asked each time)."""
        source = self.source
        if source is None or isinstance(source, str):
            return source
        token = source()
        if inspect.isawaitable(token):
            token = await token
        return str(token)

    @staticmethod
    def expiry(token: str | None) -> float | None:
        """A JWT's ``exp``, unverified; None for a token that is not a JWT or has none."""
        if not token or token.count(".") != 2:
            return None
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None

    @classmethod
    def refresh_at(cls, token: str | None, now: float | None = None) -> float | None:
        """When to ask for the next token (unix seconds), or None for one that never expires."""
        exp = cls.expiry(token)
        if exp is None:
            return None
        now = time.time() if now is None else now
        remaining = max(0.0, exp - now)
        return max(now + remaining * REFRESH_SHARE, exp - REFRESH_LEAD)
