"""The one reader of a request's JSON body, for every endpoint that takes one (the REST API,
the agent's action log, the demo's token endpoint).

Whatever bytes a client sends, the answer is a JSON object or an ``ApiError``, never an
exception of the parser: a body that is not ``application/json`` is a 400
``unsupported_content_type``; not UTF-8, not JSON (``NaN`` and ``Infinity`` are not JSON), or
numbers past the interpreter's limit, a 400 ``malformed_json``; arrays and objects nested more
than ``MAX_DEPTH`` deep, a 400 ``nesting_too_deep``, found by a scan of the text before anything
is parsed, so no nesting reaches the decoder's recursion; any value but an object, a 422
``validation_failed``. The body's size is bounded before this, by aiohttp's
``client_max_size`` (413 ``body_too_large``)."""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from aiohttp import web

from orders_live.transports.http.errors import ApiError

MAX_DEPTH = 32  # arrays and objects: deeper than any body of this API needs
# A JSON string (its brackets do not nest; one left open runs to the end), or a bracket. Linear:
# the string's two branches never overlap and it cannot fail once begun.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's body, which must be a JSON object."""
    if request.content_type != "application/json":
        raise ApiError(400, "unsupported_content_type", "send the body as application/json")
    try:
        raw = await request.read()
    except web.RequestPayloadError:  # a Content-Encoding (gzip, deflate, br) that does not decode
        raise ApiError(400, "malformed_body", "the body does not decode as its Content-Encoding says") from None
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(422, "validation_failed", "the body must be a JSON object", {"body": "must be an object"})
    return body


def parse_json(raw: bytes) -> Any:
    """``raw`` as one JSON value (UTF-8, RFC 8259), nested at most ``MAX_DEPTH`` deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "the body is not UTF-8 text") from None
    if nesting(text) > MAX_DEPTH:
        raise ApiError(
            400, "nesting_too_deep", f"the body nests arrays and objects more than {MAX_DEPTH} deep"
        ) from None
    try:
        return json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):  # RecursionError: only if the scan above is wrong
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None


def nesting(text: str) -> int:
    """How deeply arrays and objects nest in the JSON ``text`` (brackets inside strings do not
    count); for text that is not JSON, a depth at least as deep as any parse would reach."""
    deepest = depth = 0
    for token in _TOKEN.findall(text):
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth = max(depth - 1, 0)
    return deepest


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")
