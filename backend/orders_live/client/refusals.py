"""How a ``LiveOrders`` client ends when retrying cannot help: the server's refusals (a filter,
a token) and the death of its connection task; and reading a ``connect_error``."""

from __future__ import annotations

from typing import Any

ACCESS_CODES = frozenset({"unauthorized", "forbidden"})  # the token is wrong: the same on every retry


class Refused(Exception):
    """The server said no, and retrying will not help. ``code``, ``message`` and ``fields``
    are the server's (``str()`` is the message)."""

    def __init__(self, message: str, code: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.fields = message, code, dict(fields or {})


class SubscribeRefused(Refused):
    """The server refused the filter (``invalid_filter``)."""


class AccessRefused(Refused):
    """Every instance refused the token (``unauthorized``: none sent, ``forbidden``: a wrong one)
    since the last connection that got through."""


class LiveOrdersDied(RuntimeError):
    """The connection task ended unexpectedly; its error is the ``__cause__``."""


def refusal(url: str, refusals: list[Any]) -> Exception | None:
    """The server's ``connect_error`` (``{"message": ..., "data": {"code": ...}}``) as an error."""
    for answer in refusals:
        if not isinstance(answer, dict):
            continue  # a transport failure: python-socketio passes its text
        data = answer.get("data")
        code = data.get("code") if isinstance(data, dict) else None
        message = str(answer.get("message") or "the server refused the connection")
        if code in ACCESS_CODES:
            return AccessRefused(message, code)
        return ConnectionError(f"{url} refused the connection: {message} ({code})")
    return None
