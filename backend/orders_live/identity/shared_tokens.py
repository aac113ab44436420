"""The shared read and write tokens, as before identities existed: unchanged for deployments that
set no JWT option. The read token reads (a ``viewer``); the write token writes (``staff``, who
may also append agent records) and reads. With only a read token set, it guards writes too;
with no token set, everything is open.
"""

from __future__ import annotations

import hmac
import logging
from typing import Literal

from orders_live.domain.identity import OPEN, Identity
from orders_live.identity.refusals import AccessDenied, unauthorized

log = logging.getLogger(__name__)

Need = Literal["read", "write"]

WRITER = Identity(sub="write-token", role="staff", origin="shared", appends_actions=True)
READER = Identity(sub="read-token", role="viewer", origin="shared")
ANONYMOUS_READER = Identity(sub="anonymous", role="viewer", origin="shared")


class SharedTokens:
    def __init__(self, read_token: str | None, write_token: str | None) -> None:
        self.read_token, self.write_token = read_token or None, write_token or None

    @property
    def open(self) -> bool:
        return self.read_token is None and self.write_token is None

    def identify(self, token: str | None, need: Need, who: str) -> Identity:
        """The identity ``token`` gives for ``need``; AccessDenied (401 none, 403 wrong) where a
        token is needed and this one does not do."""
        if self.open:
            return OPEN
        if token is not None and _same(token, self.write_token):
            return WRITER
        if token is not None and _same(token, self.read_token):
            if self.write_token is None:
                return WRITER  # the only token: it guards writes too
            if need == "read":
                return READER
        elif need == "read" and self.read_token is None:
            return ANONYMOUS_READER  # reads are open; a token is only asked for writes
        if token is None:
            log.info("refused %s from %s: no token", need, who)
            raise unauthorized(f"a {need} token is required")
        log.info("refused %s from %s: wrong token", need, who)  # Socket.IO warns once per address and interval
        known = _same(token, self.read_token)  # the read token, for a write: not a guess
        raise AccessDenied(403, "forbidden", f"this token does not allow {need}s", proven=known)


def _same(given: str, expected: str | None) -> bool:
    # surrogatepass: a header's bytes that are not UTF-8 reach us as lone surrogates (aiohttp
    # decodes with surrogateescape), as may a JSON string; such a token is simply not this one.
    return expected is not None and hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
