"""The fuzz's corpus: hostile requests, Socket.IO sessions and Engine.IO packets, built
deterministically (a curated list, then a seeded random part) from what docs/protocol.md says
the service accepts. Every input is one the service must refuse, or answer without writing:
bodies are invalid by construction (a bad type, an unknown field, a name with a control
character, a missing name), and writes that would be valid are sent only with a Host, an
Origin, an If-Match or a token that must stop them. ``{token}``, ``{port}``, ``{order}`` and
``{sid}`` are filled in when an input is sent (the write token, the service's port, a seeded
order's id, an Engine.IO session's id)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Auth = Literal["token", "none", "wrong"]
SEED = 19

# -- values ------------------------------------------------------------------------------------

BIG = ["9223372036854775807", "9223372036854775808", "18446744073709551616", "9" * 40, "1" * 5000]
NUMBERS = [
    "",
    "0",
    "-1",
    "-0",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "1e3",
    "1e309",
    "-1e309",
    "NaN",
    "nan",
    "inf",
    "0x10",
    "٣",
    "１",
    "true",
    "null",
    "[]",
    "%00",
    "%FF",
    "a" * 3000,
    *BIG,
]
STATUSES = [
    "lost",
    "PENDING",
    "pending ",
    "pending\x00",
    "",
    "%00",
    "pending,shipped",
    '["pending"]',
    "ｐending",
    "pending%0d%0a",
    "x" * 3000,
]

POSITIONS = [
    "",
    " ",
    "pg:",
    "pg:1",
    "pg:0",
    "pg:-1",
    "pg:1.",
    "pg:.1",
    "pg:1.2.3",
    "pg:1.-2",
    "pg:1e5",
    "pg:0x10",
    "pg:٣",
    "pg: 1",
    "pg:9223372036854775807",
    "pg:9223372036854775808",
    "pg:1.9223372036854775808",
    "pg:" + "9" * 5000,
    "nx:",
    "nx:0",
    "nx:-5",
    "nx:1",
    "nx:99999999999999999999",
    "nx:٣",
    "nx:9223372036854775807.1",
    "mem:",
    "mem:0",
    "mem:-1",
    "mem:99999999",
    "mem:1" + "0" * 30,
    "8263a1b2c3d4e5f6",
    "826" + "f" * 200,
    "{}",
    "null",
    "\x00",
    "pg:1\x00",
    "ｐｇ:１",
    "x" * 4096,
    "x" * 4097,
    "nx:1\r\nX-Evil: 1",
    "../../etc/passwd",
    "%00",
    "pg:%31",
]

# Names the service must refuse (issue 19: C0 and C1 controls, NUL, lone surrogates, bidi overrides).
BAD_CHARACTERS = [
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x1b",
    "\x1b]0;x\x07",
    "\x1b[2J",
    "\x7f",
    "\x80",
    "\x85",
    "\x9b",
    "\x9f",
    "\u202a",
    "\u202b",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\ud800",
    "\udfff",
]


def hostile_name(rng: random.Random) -> str:
    bad = rng.choice(BAD_CHARACTERS)
    return rng.choice([bad, "a" + bad + "b", bad + "Ada", "Ada" + bad])


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value of any type, odd numbers and strings included."""
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308])
    if kind == 2:
        return rng.choice(["", " ", "x" * rng.randrange(1, 300), "ｘ", "\u202e", "😀", "$ne", "{}", "1"])
    if kind == 3:
        return rng.choice(STATUSES)
    if kind == 4:
        return rng.choice(POSITIONS)
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["customer_name", "product_name", "status", "id", "version", "$set", "__proto__", "since", "limit", "x"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def invalid_order_body(rng: random.Random, creating: bool) -> Any:
    """An order body the protocol refuses: each strategy is invalid by construction."""
    good = {"customer_name": "Ada", "product_name": "Lamp", "status": "pending"}
    strategy = rng.randrange(6)
    if strategy == 0:  # not an object
        return rng.choice([None, 1, "x", [good], True, 1e308, [], [[]]])
    body: dict[str, Any] = dict(good) if creating else {rng.choice(list(good)): good[rng.choice(list(good))]}
    if strategy == 1:  # an unknown field
        body[rng.choice(["id", "version", "updated_at", "$set", "__proto__", "", "x" * 200, "customer_name "])] = (
            random_json(rng)
        )
    elif strategy == 2:  # a name of the wrong type
        body[rng.choice(["customer_name", "product_name"])] = rng.choice(
            [None, 1, True, [], {"$gt": ""}, 1e309, ["Ada"]]
        )
    elif strategy == 3:  # a status that is not one
        body["status"] = rng.choice([s for s in STATUSES if s not in ("pending",)] + [None, 1, [], {"$ne": 1}])
    elif strategy == 4:  # a name no person can read
        body[rng.choice(["customer_name", "product_name"])] = hostile_name(rng)
    else:  # a name that is empty, blank or too long
        body[rng.choice(["customer_name", "product_name"])] = rng.choice(["", "   ", "\u3000", "x" * 201, "é" * 201])
    return body


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """One request, sent byte for byte. Unless ``headers`` carry their own, it gets ``Host:
    127.0.0.1:{port}`` (when ``host``) and the Authorization of ``auth``. ``polling``: open an
    Engine.IO long-polling session first (``connected``: with Socket.IO connected too) and put
    its id in ``{sid}``."""

    name: str
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    auth: Auth = "token"
    host: bool = True
    polling: Literal["bare", "connected"] | None = None
    stream: bool = False  # the answer may be an event stream: read its head only
    held: bool = False  # the answer may be a long poll, held until there is something to say


JSON = ((b"Content-Type", b"application/json"),)


def encode(value: Any) -> bytes:
    """JSON as Python writes it, lone surrogates (escaped) and NaN included."""
    return json.dumps(value).encode()


def request(name: str, method: str, target: str, body: bytes = b"", **options: Any) -> HttpRequest:
    headers = options.pop("headers", JSON if body else ())
    return HttpRequest(name, method.encode(), target.encode(), tuple(headers), body, **options)


def quoted(value: str) -> str:
    """A query value with the characters that would break the request line escaped."""
    from urllib.parse import quote

    return quote(value, safe="%:.,-_[]$")


def writes(rng: random.Random) -> Iterator[HttpRequest]:
    for n in range(60):
        body = encode(invalid_order_body(rng, creating=True))
        yield request(f"POST order #{n}", "POST", "/api/orders", body)
    for n in range(60):
        body = encode(invalid_order_body(rng, creating=False))
        yield request(f"PATCH order #{n}", "PATCH", "/api/orders/{order}", body)
    for character in BAD_CHARACTERS:
        for name in ("customer_name", "product_name"):
            value = "a" + character + "b"
            created = {"customer_name": "Ada", "product_name": "Lamp", name: value}
            yield request(f"POST {name} {character!r}", "POST", "/api/orders", encode(created))
            yield request(f"PATCH {name} {character!r}", "PATCH", "/api/orders/{order}", encode({name: value}))
    deep = [b"[" * n + b"]" * n for n in (40, 200, 1000, 5000)] + [b'{"a":' * 2000 + b"1" + b"}" * 2000]
    raw_bodies = [
        *deep,
        b"[" * 8000,
        b"{" * 8000,
        b"",
        b" ",
        b"{",
        b"}",
        b"{not json",
        b"nul",
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b'{"customer_name": NaN, "product_name": "P"}',
        b'{"customer_name": "Ada", "product_name": Infinity}',
        b'{"customer_name": "\xff\xfe", "product_name": "P"}',
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{\x00}\x00",
        b'{"customer_name": "A", "customer_name": {"$gt": ""}, "product_name": "P"}',
        b'{"customer_name": "Ada", "product_name": "P", "status": "pending", "id": ' + b"9" * 5000 + b"}",
        b'{"customer_name": "Ada", "product_name": "P", "version": 1e309}',
        b'{"status": "shipped"}\x00',
        b'{"customer_name": "\\ud800", "product_name": "P"}',
        b'{"customer_name": "\\u0000", "product_name": "P"}',
        b'"' + b"\\u0000" * 2000 + b'"',
        b"1" * 5000,
        b"[1]" * 100,
    ]
    for n, body in enumerate(raw_bodies):
        yield request(f"POST raw body #{n}", "POST", "/api/orders", body)
        yield request(f"PATCH raw body #{n}", "PATCH", "/api/orders/{order}", body)
        yield request(f"POST action raw body #{n}", "POST", "/api/agent/actions", body)
    for n in range(30):
        action = random_json(rng)
        body = dict(action) if isinstance(action, dict) else {"arguments": action}
        body["unknown_field"] = rng.choice(POSITIONS)  # always invalid: records refuse unknown fields
        yield request(f"POST action #{n}", "POST", "/api/agent/actions", encode(body))
    for n in range(10):
        yield request(
            f"POST stream ticket #{n}",
            "POST",
            "/api/stream-tickets?" + rng.choice(["x=1", "ticket=", ""]),
            encode(random_json(rng)),
        )


def content_types() -> Iterator[HttpRequest]:
    body = encode({"customer_name": "Ada", "id": 5})  # an unknown field: refused whatever its type says
    for content_type in [
        b"text/plain",
        b"",
        b"application/json; charset=utf-16",
        b"application/json; charset=latin-1",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/json\x00",
        b"application/jso\xffn",
        b"*/*",
        b"application/json, text/plain",
        b"application/json;" + b"a=b;" * 500,
        b"APPLICATION/JSON",
        b"application/problem+json",
    ]:
        for method, target in (
            ("POST", "/api/orders"),
            ("PATCH", "/api/orders/{order}"),
            ("POST", "/api/agent/actions"),
        ):
            yield request(
                f"{method} {target} as {content_type[:30]!r}",
                method,
                target,
                body,
                headers=((b"Content-Type", content_type),),
            )


def ids_in_paths() -> Iterator[HttpRequest]:
    stale = (b"If-Match", b'"99"')  # no order is at version 99: an id that names one gets a 409
    for value in [
        *BIG,
        "0",
        "00000000000000000001",
        "-1",
        "1e309",
        "NaN",
        "٣",
        "1.0",
        "%31",
        "1%00",
        "0x1",
        "1/",
        "1/x",
    ]:
        yield request(f"GET id {value[:30]}", "GET", "/api/orders/" + value)
        yield request(
            f"PATCH id {value[:30]}",
            "PATCH",
            "/api/orders/" + value,
            encode({"status": "shipped"}),
            headers=(*JSON, stale),
        )
        yield request(f"DELETE id {value[:30]}", "DELETE", "/api/orders/" + value, headers=(stale,))
    yield request("DELETE wrong If-Match", "DELETE", "/api/orders/{order}", headers=((b"If-Match", b'"7"'),))
    yield request("DELETE unknown id", "DELETE", "/api/orders/999999999")


def queries(rng: random.Random) -> Iterator[HttpRequest]:
    for value in STATUSES:
        yield request("list status", "GET", "/api/orders?status=" + quoted(value))
        for parameter in ("kind", "trigger"):
            yield request(f"actions {parameter}", "GET", f"/api/agent/actions?{parameter}=" + quoted(value))
            target = f"/api/agent/actions/stream?{parameter}=" + quoted(value)
            yield request(f"action stream {parameter}", "GET", target, stream=True)
    for value in NUMBERS:
        yield request("list limit", "GET", "/api/orders?limit=" + quoted(value))
        yield request("poll id", "GET", "/api/changes?since=pg:1&id=" + quoted(value))
        yield request("poll limit", "GET", "/api/changes?since=nx:1&limit=" + quoted(value))
        yield request("stream id", "GET", "/api/changes/stream?id=" + quoted(value), stream=True)
        yield request("stream limit", "GET", "/api/changes/stream?limit=" + quoted(value), stream=True)
        for parameter in ("limit", "after", "order_id", "order_version"):
            yield request(f"actions {parameter}", "GET", f"/api/agent/actions?{parameter}=" + quoted(value))
        yield request("action stream after", "GET", "/api/agent/actions/stream?after=" + quoted(value), stream=True)
        yield request(
            "action stream Last-Event-ID",
            "GET",
            "/api/agent/actions/stream",
            stream=True,
            headers=((b"Last-Event-ID", value.encode()[:4000]),),
        )
    for value in [
        "",
        "x",
        "2026-13-01T00:00:00Z_1",
        "2026-12-01T10:57:49.123Z_-1",
        "2026-12-01T10:57:49.123Z_" + "9" * 30,
        "_",
        "1e309_1",
        "\x00",
        "9" * 3000,
    ]:
        yield request("list before", "GET", "/api/orders?before=" + quoted(value))
    for position in POSITIONS:
        target = quoted(position)
        yield request("poll since", "GET", "/api/changes?since=" + target)
        yield request("poll since, id", "GET", f"/api/changes?since={target}&id=9223372036854775807")
        yield request("poll since, status", "GET", f"/api/changes?since={target}&status=shipped")
        yield request("stream since", "GET", "/api/changes/stream?since=" + target, stream=True)
        yield request("stream since, id", "GET", f"/api/changes/stream?id=1&since={target}", stream=True)
        header = position.encode().replace(b"\r\n", b"")[:4100]
        yield request(
            "stream Last-Event-ID",
            "GET",
            "/api/changes/stream?status=pending",
            stream=True,
            headers=((b"Last-Event-ID", header),),
        )
    for query in [
        "status=pending&status=shipped",
        "status[$ne]=x",
        "since",
        "since=&since=pg:1",
        "%FF=1",
        "id=1&status=pending&since=pg:1",
        "x=" + "y" * 6000,
        "&&&&",
        "=",
        "since=pg:1&" + "a=1&" * 200,
        "limit[]=1",
        "token=wrong",
        "ticket=forged",
        "ticket=",
        "token=%FF",
        "token=%ED%A0%80",
        "since=pg:1#frag",
        "since=%E0%A4%A",
        "since=%C0%AE%C0%AE",
    ]:
        for path in (
            "/api/orders",
            "/api/changes",
            "/api/changes/stream",
            "/api/agent/actions",
            "/api/agent/actions/stream",
        ):
            yield request(f"{path}?{query[:30]}", "GET", f"{path}?{query}", stream=path.endswith("stream"))
    for n in range(40):  # random mixes of parameters and forged positions
        path = rng.choice(["/api/changes", "/api/changes/stream"])
        parameters = {
            rng.choice(["since", "status", "id", "limit", "x"]): rng.choice(POSITIONS + NUMBERS + STATUSES)
            for _ in range(3)
        }
        target = path + "?" + "&".join(f"{k}={quoted(v)}" for k, v in parameters.items())
        yield request(f"feed mix #{n}", "GET", target, stream=path.endswith("stream"))


def methods_and_paths() -> Iterator[HttpRequest]:
    for method in [
        "PUT",
        "TRACE",
        "CONNECT",
        "PROPFIND",
        "GETT",
        "get",
        "M" * 200,
        "PATCH",
        "DELETE",
        "HEAD",
        "OPTIONS",
        "QUERY",
    ]:
        for target in ("/api/orders", "/api/changes", "/api/changes/stream", "/api/orders/{order}", "/socket.io/"):
            body = encode({"status": "pending", "customer_name": 1}) if method in ("PUT", "PATCH", "QUERY") else b""
            extra = ((b"If-Match", b'"99"'),) if method == "DELETE" else ()  # an order's DELETE must not happen
            options = {"headers": (*JSON, *extra)} if body else {"headers": extra}
            yield request(f"{method[:10]} {target}", method, target, body, stream=target.endswith("stream"), **options)
    for target in [
        "/api/orders/",
        "//api/orders",
        "/api/orders/../orders",
        "/api/%2e%2e/orders",
        "/api/orders/%00",
        "/api/orders/{order}/x",
        "/%FF",
        "http://evil.test/api/orders",
        "*",
        "/" + "a" * 7000,
        "/assets/../../etc/passwd",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/live.html?status=%00",
        "/api/",
        "/api",
        "/api/orders;x=1",
        "/api/orders\\1",
        "/api/orders/1%2F2",
        "/readyz?x=\x7f",
        "/metrics/x",
    ]:
        for method in ("GET", "POST", "DELETE"):
            yield request(f"{method} {target[:40]}", method, target, encode([]) if method == "POST" else b"")


def headers() -> Iterator[HttpRequest]:
    good = encode({"customer_name": "Ada", "product_name": "Lamp"})  # valid: only the header may stop it
    invalid = encode({"customer_name": "Ada", "product_name": "Lamp", "id": 5})
    foreign = [  # names another site may rebind to this address: a write with them must be refused
        b"evil.test",
        b"evil.test:{port}",
        b"127.0.0.1:{port}.evil.test",
        b"127.0.0.1:{port}, evil.test",
        b"\xff\xfe",
        b"localhost.evil.test:{port}",
        b"EVIL.TEST:{port}",
        b"127.0.0.1:{port}\x00",
    ]
    odd = [
        b"",
        b"127.0.0.1:1",
        b"127.0.0.1:99999999",
        b"[::1]:{port}",
        b"0.0.0.0:{port}",
        b"127.0.0.2:{port}",
        b"127.1:{port}",
        b"2130706433:{port}",
    ]
    for host in foreign + odd:
        body = good if host in foreign else invalid  # whether an odd name is this host is the setting's to say
        yield request(f"POST Host {host!r}", "POST", "/api/orders", body, headers=(*JSON, (b"Host", host)))
        yield request(f"GET Host {host!r}", "GET", "/api/orders", headers=((b"Host", host),))
        yield request(f"stream Host {host!r}", "GET", "/api/changes/stream", headers=((b"Host", host),), stream=True)
    yield request(
        "POST two Hosts",
        "POST",
        "/api/orders",
        invalid,
        headers=(*JSON, (b"Host", b"127.0.0.1:{port}"), (b"Host", b"evil.test")),
    )
    yield request("POST no Host", "POST", "/api/orders", invalid, host=False)
    for origin, host in [
        (b"http://evil.test:{port}", b"evil.test:{port}"),
        (b"http://evil.test", None),
        (b"null", None),
        (b"file://", None),
        (b"http://127.0.0.1:{port}.evil.test", None),
        (b"http://127.0.0.1:1", None),
        (b"\xff", None),
        (b"http://evil.test:{port}", None),
    ]:
        extra = ((b"Host", host),) if host is not None else ()
        yield request(
            f"POST Origin {origin!r}", "POST", "/api/orders", good, headers=(*JSON, (b"Origin", origin), *extra)
        )
        yield request(
            f"PATCH Origin {origin!r}",
            "PATCH",
            "/api/orders/{order}",
            encode({"status": "shipped"}),
            headers=(*JSON, (b"Origin", origin), *extra),
        )
        yield request(
            f"preflight Origin {origin!r}",
            "OPTIONS",
            "/api/orders",
            headers=((b"Origin", origin), (b"Access-Control-Request-Method", b"DELETE"), *extra),
        )
    for value in [
        b"",
        b"*",
        b'W/"1"',
        b'"1", "2"',
        b"-1",
        b"9223372036854775808",
        b"9" * 5000,
        b"1e3",
        b"NaN",
        "٣".encode(),
        b'""',
        b'"',
        b"\x00",
        b"0",
    ]:
        yield request(
            f"PATCH If-Match {value[:20]!r}",
            "PATCH",
            "/api/orders/{order}",
            encode({"status": "shipped"}),
            headers=(*JSON, (b"If-Match", value)),
        )
        yield request(
            f"DELETE If-Match {value[:20]!r}", "DELETE", "/api/orders/{order}", headers=((b"If-Match", value),)
        )
    for authorization in [
        b"Bearer",
        b"Bearer ",
        b"bearer wrong",
        b"Basic Zm9vOmJhcg==",
        b"Bearer " + b"a" * 7000,
        b"Bearer \x00",
        b"Bearer tok\xff",
        b"Bearer {token} {token}",
        b"Bearer {token}x",
        b"Token {token}",
        b"Bearer a.b.c",
        b"Bearer eyJhbGciOiJub25lIn0.e30.",
    ]:
        for method, target, body in (
            ("GET", "/api/orders", b""),
            ("POST", "/api/orders", good),
            ("DELETE", "/api/orders/{order}", b""),
        ):
            yield request(
                f"{method} Authorization {authorization[:20]!r}",
                method,
                target,
                body,
                headers=(*JSON, (b"Authorization", authorization)),
            )
    yield request(
        "two Authorizations",
        "POST",
        "/api/orders",
        invalid,
        headers=(*JSON, (b"Authorization", b"Bearer wrong"), (b"Authorization", b"Bearer {token}")),
    )
    forwarded = [
        b"evil",
        b"1.2.3.4",
        b"1.2.3.4, 5.6.7.8",
        b"::1",
        b"unknown",
        b"",
        b"\xff\xfe",
        b"1.2.3.4:80",
        b"[::1]:80",
        b", ".join([b"10.0.0.1"] * 600),
        b"999.999.999.999",
        b"127.0.0.1\x00",
    ]
    for value in forwarded:  # the fuzz's peers are loopback: a trusted proxy by default
        for method, target, body in (("GET", "/api/orders", b""), ("POST", "/api/orders", invalid)):
            yield request(
                f"{method} X-Forwarded-For {value[:20]!r}",
                method,
                target,
                body,
                headers=(*JSON, (b"X-Forwarded-For", value)),
            )
        yield request(
            f"connect X-Forwarded-For {value[:20]!r}",
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            headers=((b"X-Forwarded-For", value),),
            auth="wrong",
        )
    for name, value in (
        (b"Forwarded", b"for=evil;host=evil.test"),
        (b"X-Forwarded-Host", b"evil.test"),
        (b"X-Forwarded-Proto", b"gopher"),
    ):
        yield request(f"POST {name!r}", "POST", "/api/orders", invalid, headers=(*JSON, (name, value)))
    framing = [
        ((b"Content-Length", b"-1"),),
        ((b"Content-Length", b"abc"),),
        ((b"Content-Length", b"99999999999999999999"),),
        ((b"Content-Length", b"5"), (b"Content-Length", b"6")),
        ((b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")),
        ((b"Transfer-Encoding", b"gzip"),),
        ((b"Transfer-Encoding", b"chunked"),),
        ((b"Expect", b"100-continue-please"),),
        ((b"X-Long", b"x" * 9000),),
        tuple((f"X-{n}".encode(), b"1") for n in range(200)),
        ((b"Bad Header", b"1"),),
        ((b"X-Fold", b"a\r\n b"),),
        ((b"Content-Encoding", b"gzip"),),
        ((b"Content-Encoding", b"br"),),
    ]
    for n, extra in enumerate(framing):
        body = b"zz\r\n{}\r\n0\r\n\r\n" if (b"Transfer-Encoding", b"chunked") in extra else b'{"x":1}'
        yield request(f"POST framing #{n}", "POST", "/api/orders", body, headers=(*JSON, *extra))
    for encoding in (b"gzip", b"deflate", b"br", b"x-unknown", b"gzip, gzip"):  # bodies nobody reads
        for target in ("/api/orders", "/api/changes?since=pg:1", "/healthz", "/socket.io/?EIO=4&transport=polling"):
            headers = ((b"Content-Encoding", encoding),)
            yield request(f"GET {target[:20]} {encoding!r} body", "GET", target, b"not compressed", headers=headers)


def engine_io_requests() -> Iterator[HttpRequest]:
    base = "/socket.io/?"
    for query in [
        "EIO=3&transport=polling",
        "EIO=5&transport=polling",
        "EIO=&transport=polling",
        "EIO=4.5&transport=polling",
        "EIO=-1&transport=polling",
        "EIO=9223372036854775808&transport=polling",
        "EIO=4&transport=flashsocket",
        "EIO=4",
        "transport=polling",
        "EIO=4&transport=",
        "EIO=4&transport=polling&sid=unknown",
        "EIO=4&transport=polling&sid=" + "a" * 3000,
        "EIO=4&transport=polling&sid=%00",
        "EIO=4&transport=polling&j=1",
        "EIO=4&transport=polling&b64=1",
        "EIO=4&transport=polling&t=" + "x" * 2000,
        "EIO=4&transport=websocket",
        "EIO=4&transport=websocket&sid=unknown",
        "EIO=4&transport=polling&transport=websocket",
    ]:
        for method in ("GET", "POST", "PUT", "DELETE"):
            yield request(
                f"{method} engine {query[:40]}", method, base + query, b"40" if method == "POST" else b"", headers=()
            )
    upgrade = (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")
    for extra in [
        (),
        ((b"Sec-WebSocket-Version", b"13"),),
        ((b"Sec-WebSocket-Key", b"short"), (b"Sec-WebSocket-Version", b"13")),
        ((b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"Sec-WebSocket-Version", b"99")),
        ((b"Sec-WebSocket-Key", b"\xff" * 24), (b"Sec-WebSocket-Version", b"13")),
    ]:
        yield request("bad upgrade", "GET", base + "EIO=4&transport=websocket", headers=(*upgrade, *extra))
        yield request(
            "bad upgrade on a session",
            "GET",
            base + "EIO=4&transport=websocket&sid={sid}",
            headers=(*upgrade, *extra),
            polling="bare",
            held=True,
        )
    bodies = [
        b"",
        b"\x1e",
        b"4\x1e",
        b"4" + b"\x1e" * 100,
        b"b",
        b"b!!!",
        b"bAAA",
        b"b4" + b"A" * 40,
        b"6\x1e" * 1000,
        b"3:42[]",
        b"1:",
        b"2",
        b"\xff\xfe",
        b"42" + b"[" * 5000,
        b'42["subscribe",' + b"{" * 3000,
        b"4" + b"x" * 20000,
        b"5",
        b"0",
        b"1",
        b"7",
        b"40\x1e40",
        b'42["subscribe",{"since":"pg:9223372036854775808"}]\x1e42["subscribe",{"id":' + b"9" * 5000 + b"}]",
        b'421["subscribe",{"id":1e309}]',
        b'42["refresh_token",{"token":"' + b"a" * 15000 + b'"}]',
        b"41",
        b"44",
        b"46",
        b"49",
        b'42/admin,["subscribe",{}]',
        b"40/admin,",
        b'45-["x"]',
        b'451-["subscribe",{"_placeholder":true,"num":0}]',
    ]
    for n, body in enumerate(bodies):
        target = base + "EIO=4&transport=polling&sid={sid}"
        yield request(f"polling body #{n} (connected)", "POST", target, body, headers=(), polling="connected")
        yield request(f"polling body #{n} (bare)", "POST", target, body, headers=(), polling="bare")
    for content_type in (b"application/octet-stream", b"text/plain; charset=utf-16", b"\xff"):
        target = base + "EIO=4&transport=polling&sid={sid}"
        yield request(
            f"polling as {content_type!r}",
            "POST",
            target,
            b"40",
            headers=((b"Content-Type", content_type),),
            polling="bare",
        )


def http_inputs(rng: random.Random) -> list[HttpRequest]:
    """Every HTTP input, writes also without a token and with a wrong one."""
    made = [
        *writes(rng),
        *content_types(),
        *ids_in_paths(),
        *queries(rng),
        *methods_and_paths(),
        *headers(),
        *engine_io_requests(),
    ]
    unauthenticated = [
        HttpRequest(**{**vars(item), "name": f"{item.name} ({auth})", "auth": auth})
        for n, item in enumerate(made)
        if (item.method in (b"POST", b"PATCH", b"DELETE", b"PUT") and n % 2 == 0) or n % 11 == 0
        for auth in (("none",) if n % 4 < 2 else ("wrong",))
    ]
    return made + unauthenticated


# -- Socket.IO over a WebSocket ------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """A WebSocket frame a client sends (masked unless ``masked`` is off)."""

    payload: bytes
    opcode: int = 0x1
    fin: bool = True
    rsv: int = 0
    masked: bool = True


@dataclass(frozen=True)
class SocketSession:
    """A WebSocket to ``/socket.io/?<query>``: the Socket.IO ``connect`` packet (None: none is
    sent), then ``frames``; a probe (``unsubscribe`` with an ack) follows, to see the
    connection still answers or was closed."""

    name: str
    frames: tuple[Frame, ...]
    connect: str | None = '40{"token":"{token}"}'
    query: str = "EIO=4&transport=websocket"
    extra: dict[str, Any] = field(default_factory=dict)


EVENTS = ["subscribe", "unsubscribe", "refresh_token"]
ODD_EVENTS: list[Any] = [
    "connect",
    "disconnect",
    "message",
    "",
    "__proto__",
    "x" * 1000,
    123,
    None,
    ["subscribe"],
    "subscribe\x00",
]


def socketio_payloads(rng: random.Random) -> list[Any]:
    payloads: list[Any] = [
        {},
        [],
        None,
        True,
        1,
        -1,
        1.5,
        "all",
        "x" * 15000,
        [1, 2],
        {"": 1},
        {"__proto__": {}},
        {"status": "lost"},
        {"status": None},
        {"status": ["pending"]},
        {"status": {"$ne": "x"}},
        {"status": "pending\x00"},
        {"id": 0},
        {"id": -1},
        {"id": 1.5},
        {"id": "1"},
        {"id": True},
        {"id": None},
        {"id": []},
        {"id": 2**63},
        {"id": 2**64},
        {"id": 10**30},
        {"id": 1, "status": "pending"},
        {"limit": 0},
        {"limit": -1},
        {"limit": 10**6},
        {"limit": 2**63},
        {"limit": "10"},
        {"limit": 1.5},
        {"token": None},
        {"token": 1},
        {"token": ""},
        {"token": "a.b.c"},
        {"token": "x" * 10000},
        {"token": "wrong"},
        {"token": "eyJhbGciOiJub25lIn0.e30."},
        {"token": ["{token}"]},
        {"token": "\ud800"},
    ]
    payloads += [{"since": position} for position in POSITIONS]
    payloads += [{"status": "pending", "since": position, "limit": 5} for position in POSITIONS[::3]]
    payloads += [{"id": 9223372036854775807, "since": position} for position in POSITIONS[::4]]
    payloads += [{"since": value} for value in [1, None, [], {}, True, 1.5]]
    payloads += [random_json(rng) for _ in range(25)]
    return payloads


def text(packet: str) -> Frame:
    return Frame(packet.encode("utf-8", "surrogatepass"))


def socketio_sessions(rng: random.Random) -> list[SocketSession]:
    sessions: list[SocketSession] = []
    for payload in socketio_payloads(rng):
        for event in EVENTS:
            packet = "421" + json.dumps([event, payload])
            sessions.append(SocketSession(f"{event} {packet[3:60]}", (text(packet),)))
    for event in ODD_EVENTS:
        for payload in ({}, {"status": "pending"}, None):
            sessions.append(SocketSession(f"event {str(event)[:20]!r}", (text("421" + json.dumps([event, payload])),)))
    packets = [
        '42["subscribe",{},{}]',
        '42["subscribe"]',
        "42[]",
        "42{}",
        '42"subscribe"',
        "42null",
        '42-1["subscribe",{}]',
        '42 1["subscribe",{}]',
        '429999999999999999999["subscribe",{}]',
        '4201["subscribe",{}]',
        '42abc["subscribe",{}]',
        '421.5["subscribe",{}]',
        '42٣["subscribe",{}]',
        '42/admin,["subscribe",{}]',
        '42/,["subscribe",{}]',
        "42/" + "x" * 1000 + ',["subscribe",{}]',
        "40/admin,",
        "40/admin,{}",
        "41/admin,",
        "41",
        "40",
        '40{"token":"{token}"}',
        "43",
        "431[]",
        '43999["x"]',
        "44",
        '44{"message":"x"}',
        "46",
        '461-[{"_placeholder":true,"num":0}]',
        '451-["subscribe",{"_placeholder":true,"num":0}]',
        '451-["subscribe",{"_placeholder":true,"num":5}]',
        '45-["subscribe",{"_placeholder":true,"num":0}]',
        '4599999999999999999999-["subscribe",{}]',
        "47",
        "48",
        "49",
        "4",
        "4" + "[" * 40 + "]" * 40,
        "42" + "[" * 40 + '"subscribe"' + "]" * 40,
        '42["subscribe",' + "[" * 2000 + "]" * 2000 + "]",
        '42["subscribe",{"id":' + "1" * 5000 + "}]",
        '421["subscribe",{"id":1e309}]',
        '421["subscribe",{"id":NaN}]',
        '421["subscribe",{"limit":Infinity}]',
        '421["subscribe",{"since":"\\ud800"}]',
        '421["subscribe",{"status":"\\u0000"}]',
        '421["subscribe",{"status":"pending","status":"lost"}]',
        "42" + json.dumps(["subscribe", {"since": "x" * 16000}]),
        "2",
        "3",
        "2probe",
        "5",
        "6",
        "1",
        "0",
        "7",
        "",
        "x",
        "9",
        "3probe",
        "4" * 20000,
        "2" + "x" * 20000,
    ]
    for packet in packets:
        sessions.append(SocketSession(f"packet {packet[:50]!r}", (text(packet),)))
    binary = [b"", b"\x00", b"\x04", b"\xff" * 100, bytes(range(256)), b"4" + b"x" * 20000, b'\x0442["subscribe",{}]']
    for payload in binary:
        sessions.append(SocketSession(f"binary {payload[:10]!r}", (Frame(payload, opcode=0x2),)))
        sessions.append(
            SocketSession(
                f"placeholder + binary {payload[:10]!r}",
                (text('451-["subscribe",{"_placeholder":true,"num":0}]'), Frame(payload, opcode=0x2)),
            )
        )
    raw = [
        (Frame(b"\xff\xfe", opcode=0x1),),
        (Frame(b'42["subscribe",{"since":"\xed\xa0\x80"}]'),),
        (Frame(b"ping", opcode=0x9),),
        (Frame(b"x" * 200, opcode=0x9),),
        (Frame(b"pong", opcode=0xA),),
        (Frame(b"", opcode=0x3),),
        (Frame(b"", opcode=0xB),),
        (Frame(b"42", fin=False), Frame(b'["subscribe",{}]', opcode=0x0)),
        (Frame(b"42", fin=False),),
        (Frame(b"x", opcode=0x0),),
        (Frame(b"42[]", rsv=4),),
        (Frame(b"42[]", masked=False),),
        (Frame(b"\x03\xe8", opcode=0x8),),
        (Frame(b"\x00", opcode=0x8),),
        (Frame(b"42", fin=False), Frame(b"[", opcode=0x1)),
    ]
    for n, frames in enumerate(raw):
        sessions.append(SocketSession(f"raw frames #{n}", frames))
    for auth in [
        "40",
        '40{"token":123}',
        "40[]",
        '40"x"',
        '40{"token":"' + "a" * 20000 + '"}',
        '40{"token":null}',
        '40{"token":"{token}","max_message":-1}',
        '40{"token":"{token}","max_message":1e309}',
        '40{"token":"{token}","max_message":"x"}',
        '40{"token":"{token}","max_message":1}',
        '40{"token":"{token}","max_message":' + "9" * 5000 + "}",
        '40{"token":"{token}x"}',
        '40{"token":["{token}"]}',
        "40{",
        "40/x,{}",
        '40{"token":"{token}"}' + "}" * 10,
        '40{"token":"\\u0000"}',
        '40{"token":"\\ud800"}',
        '40{"token":"tok\\udcff"}',
    ]:
        sessions.append(SocketSession(f"connect {auth[:40]!r}", (text('421["subscribe",{}]'),), connect=auth))
    for query in [
        "EIO=3&transport=websocket",
        "EIO=5&transport=websocket",
        "EIO=&transport=websocket",
        "transport=websocket",
        "EIO=4&transport=websocket&sid=forged",
    ]:
        sessions.append(SocketSession(f"websocket {query}", (text('421["subscribe",{}]'),), query=query))
    unauthenticated = [
        SocketSession(
            f"{session.name} (no token)",
            session.frames,
            connect="40" if n % 2 else '40{"token":"wrong"}',
            query=session.query,
        )
        for n, session in enumerate(sessions)
        if n % 12 == 0
    ]
    unauthenticated += [
        SocketSession(f"{session.name} (no connect)", session.frames, connect=None) for session in sessions[1::25]
    ]
    return sessions + unauthenticated


def corpus() -> tuple[list[HttpRequest], list[SocketSession]]:
    """The whole corpus, the same on every run."""
    rng = random.Random(SEED)
    return http_inputs(rng), socketio_sessions(rng)
