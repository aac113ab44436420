"""What a client may send: Engine.IO v4 / Socket.IO v5 packets, checked before the libraries
parse them, so that a hostile or broken client gets one refusal instead of a traceback.

Pure functions over the text of one packet; they return why a packet is refused, or None.
Nothing here imports the libraries.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # arrays and objects nested deeper than any packet of this protocol needs
MAX_NAMESPACE = 100
MAX_ACK_DIGITS = 15
# Engine.IO packets a client sends as whole frames: close, ping/pong (probe), upgrade, noop.
_ENGINE_CONTROL = frozenset({"1", "2", "3", "2probe", "3probe", "5", "6"})
_SOCKETIO_TYPES = frozenset("0123")  # CONNECT, DISCONNECT, EVENT, ACK (no binary, no CONNECT_ERROR)

RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting"})  # Socket.IO's own


def engine_packet_problem(data: Any) -> str | None:
    """One WebSocket message, as Engine.IO will read it."""
    if isinstance(data, bytes | bytearray):
        return "binary frame"
    if not isinstance(data, str) or not data:
        return "empty packet"
    if data[0] == "4":
        return socketio_packet_problem(data[1:])
    if data in _ENGINE_CONTROL:
        return None
    return "unknown engine packet"


def socketio_packet_problem(data: Any) -> str | None:
    """One Engine.IO message's payload, as Socket.IO will read it."""
    if isinstance(data, bytes | bytearray):
        return "binary packet"
    if not isinstance(data, str) or not data:
        return "empty packet"
    kind, rest = data[0], data[1:]
    if kind not in _SOCKETIO_TYPES:
        return "unsupported packet type"
    if rest.startswith("/"):
        comma = rest.find(",")
        namespace, rest = (rest, "") if comma < 0 else (rest[:comma], rest[comma + 1 :])
        if len(namespace) > MAX_NAMESPACE:
            return "namespace too long"
    digits = 0
    while digits < len(rest) and rest[digits].isdigit():
        digits += 1
    if digits > MAX_ACK_DIGITS:
        return "ack id too long"
    body = rest[digits:]
    if not body:
        return "event without data" if kind in "23" else None
    try:
        parsed = json.loads(body)
    except RecursionError:
        return "too deeply nested"
    except ValueError:
        return "malformed JSON"
    if _depth(parsed) > MAX_DEPTH:
        return "too deeply nested"
    if kind == "2" and not (isinstance(parsed, list) and parsed and isinstance(parsed[0], str)):
        return "malformed event"
    if kind == "2" and parsed[0] in RESERVED_EVENTS:
        return "reserved event name"
    if kind == "3" and not isinstance(parsed, list):
        return "malformed ack"
    if kind == "0" and not isinstance(parsed, dict):
        return "malformed connect"
    return None


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            children: Any = item
        elif isinstance(item, dict):
            children = item.values()
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
