"""How access is refused, whatever the transport: an HTTP status, a code and a sentence."""

from __future__ import annotations


class AccessDenied(Exception):
    """A refusal, as each transport will say it: an HTTP status, a code and a message."""

    def __init__(self, status: int, code: str, message: str, proven: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.proven = proven  # the token proved who holds it: a refusal, not a guess


def unauthorized(message: str) -> AccessDenied:
    """No token, or one that does not prove who it stands for (401)."""
    return AccessDenied(401, "unauthorized", message)


def forbidden(message: str) -> AccessDenied:
    """A proven identity that may not do this (403)."""
    return AccessDenied(403, "forbidden", message, proven=True)
