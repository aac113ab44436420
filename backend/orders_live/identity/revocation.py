"""Revoked tokens: a file of ``sub`` or ``jti`` values, one per line (``#`` comments and blank
lines ignored), re-read when it changes. A token whose ``sub`` or ``jti`` is listed is refused,
and the connections and streams it opened are ended (by the transports, told through
``Authenticator.on_revoked``)."""

from __future__ import annotations

from orders_live.domain.identity import Identity

MAX_REVOKED = 1_000_000  # lines: a list longer than this is a mistake, not a revocation list


def parse_revoked(raw: bytes) -> frozenset[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    values = frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    if len(values) > MAX_REVOKED:
        raise ValueError(f"more than {MAX_REVOKED:,} lines")
    return values


def is_revoked(identity: Identity, revoked: frozenset[str]) -> bool:
    """Only identities from tokens can be revoked (a shared token is changed, not revoked)."""
    if identity.origin != "jwt" or not revoked:
        return False
    return identity.sub in revoked or (identity.jti is not None and identity.jti in revoked)
