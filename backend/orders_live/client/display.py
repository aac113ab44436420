"""Text from the service as a person is shown it: in a terminal (``orders-live watch``) or in
a model's prompt (the agent).

The service refuses names that are not readable text, but a client does not rely on that: a
row written before the rule, or by another writer, may hold anything. So every character that
is not printable (controls such as ESC, BEL, CR and LF; the marks that reorder text, such as
U+202E; line separators; tag characters; lone surrogates; unassigned code points) is shown as
JSON's escape for it (``\\u001b``, ``\\u202e``; beyond U+FFFF, a surrogate pair), and so can
neither move a cursor, retitle or clear a terminal, nor reorder or hide what follows it.

Backslashes are left as they are, so that ``shown`` of a JSON text is JSON with the same value."""

from __future__ import annotations

import re

_HIDDEN = re.compile(r"[^ -~]")  # outside printable ASCII: looked at one by one


def shown(text: str) -> str:
    """``text`` with every character that is not printable escaped as JSON escapes it."""
    return _HIDDEN.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
