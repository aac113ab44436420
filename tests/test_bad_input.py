"""Bad input gets a clear 4xx (or an error ack) and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from orders_live.service import Service
from test_live_feed import database_orders

pytestmark = pytest.mark.database

BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str, set[str]]] = [
    # method, path, request options, status, error code, fields named
    (
        "POST",
        "/api/orders",
        {"data": "{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "malformed_json",
        set(),
    ),
    (
        "POST",
        "/api/orders",
        {"data": "customer_name=a", "headers": {"Content-Type": "text/plain"}},
        400,
        "unsupported_content_type",
        set(),
    ),
    ("POST", "/api/orders", {"json": ["a", "b"]}, 422, "validation_failed", {"body"}),
    ("POST", "/api/orders", {"json": {"customer_name": "Ada"}}, 422, "validation_failed", {"product_name"}),
    (
        "POST",
        "/api/orders",
        {"json": {"customer_name": "   ", "product_name": "x" * 201}},
        422,
        "validation_failed",
        {"customer_name", "product_name"},
    ),
    (
        "POST",
        "/api/orders",
        {"json": {"customer_name": "Ada", "product_name": "P", "status": {"$ne": 1}}},
        422,
        "validation_failed",
        {"status"},
    ),
    (
        "POST",
        "/api/orders",
        {"json": {"customer_name": {"$gt": ""}, "product_name": "P"}},
        422,
        "validation_failed",
        {"customer_name"},
    ),
    (
        "POST",
        "/api/orders",
        {"json": {"customer_name": "Ada", "product_name": "P", "version": 7}},
        422,
        "validation_failed",
        {"version"},
    ),
    (
        "POST",
        "/api/orders",
        {"json": {"customer_name": "Ada", "product_name": "P", "status": "lost"}},
        422,
        "validation_failed",
        {"status"},
    ),
    (
        "POST",
        "/api/orders",
        {
            "data": json.dumps({"customer_name": "A" * 40_000, "product_name": "P"}),
            "headers": {"Content-Type": "application/json"},
        },
        413,
        "body_too_large",
        set(),
    ),
    ("PATCH", "/api/orders/{id}", {"json": {}}, 422, "validation_failed", {"body"}),
    ("PATCH", "/api/orders/{id}", {"json": {"status": {"$set": "shipped"}}}, 422, "validation_failed", {"status"}),
    ("PATCH", "/api/orders/{id}", {"json": {"id": 9}}, 422, "validation_failed", {"id"}),
    (
        "PATCH",
        "/api/orders/{id}",
        {"json": {"status": "shipped"}, "headers": {"If-Match": "soon"}},
        400,
        "invalid_header",
        {"If-Match"},
    ),
    (
        "PATCH",
        "/api/orders/{id}",
        {"json": {"status": "shipped"}, "headers": {"If-Match": '"7"'}},
        409,
        "version_conflict",
        set(),
    ),
    ("PATCH", "/api/orders/999999", {"json": {"status": "shipped"}}, 404, "not_found", set()),
    ("DELETE", "/api/orders/{id}", {"headers": {"If-Match": "5"}}, 409, "version_conflict", set()),
    ("DELETE", "/api/orders/999999", {}, 404, "not_found", set()),
    ("GET", "/api/orders/999999", {}, 404, "not_found", set()),
    ("GET", "/api/orders/abc", {}, 404, "not_found", set()),
    ("GET", "/api/orders?limit=0", {}, 422, "validation_failed", {"limit"}),
    ("GET", "/api/orders?limit=1001", {}, 422, "validation_failed", {"limit"}),
    ("GET", "/api/orders?limit=ten", {}, 422, "validation_failed", {"limit"}),
    ("GET", "/api/orders?status=lost", {}, 422, "validation_failed", {"status"}),
    ("GET", "/api/orders?status[$ne]=x", {}, 422, "validation_failed", {"status[$ne]"}),
    ("PUT", "/api/orders/{id}", {"json": {}}, 405, "method_not_allowed", set()),
]


@pytest.mark.parametrize(("method", "path", "options", "status", "code", "fields"), BAD_REQUESTS)
async def test_rest_refuses_bad_input_and_changes_nothing(
    service: Service, method: str, path: str, options: dict[str, Any], status: int, code: str, fields: set[str]
) -> None:
    url = service.settings.database_url or ""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{service.url}/api/orders", json={"customer_name": "Ada", "product_name": "Lamp"}
        ) as r:
            order = await r.json()
        before = await database_orders(url)
        async with session.request(method, service.url + path.format(id=order["id"]), **options) as response:
            body = await response.json()
            assert response.status == status, body
            assert response.content_type == "application/json"
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert set(body["error"]["fields"]) == fields
    if status == 409:
        assert body["order"] == order
    assert await database_orders(url) == before


async def test_if_match_accepts_a_bare_or_quoted_version_and_etag_tracks_it(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{service.url}/api/orders", json={"customer_name": "Ada", "product_name": "P"}) as r:
            order = await r.json()
            assert r.headers["ETag"] == '"1"'
        for n, header in enumerate(["1", '"2"'], start=2):
            async with session.patch(
                f"{service.url}/api/orders/{order['id']}", json={"status": "shipped"}, headers={"If-Match": header}
            ) as response:
                assert response.status == 200
                assert response.headers["ETag"] == f'"{n}"'
                assert (await response.json())["version"] == n
        async with session.get(f"{service.url}/api/orders/{order['id']}") as response:
            assert response.headers["ETag"] == '"3"'
        async with session.delete(f"{service.url}/api/orders/{order['id']}", headers={"If-Match": "3"}) as response:
            assert response.status == 204


BAD_SUBSCRIPTIONS: list[tuple[Any, set[str]]] = [
    ({"status": "lost"}, {"status"}),
    ({"status": {"$ne": "pending"}}, {"status"}),
    ({"id": "1"}, {"id"}),
    ({"id": -3}, {"id"}),
    ({"id": True}, {"id"}),
    ({"status": "pending", "id": 1}, {"filter"}),
    ({"room": "all"}, {"room"}),
    ({"since": 42}, {"since"}),
    ("all", {"filter"}),
    ([1, 2], {"filter"}),
]


async def test_subscribe_refuses_bad_filters_with_an_error_ack_and_stays_usable(
    service: Service, listeners: Any
) -> None:
    listener = await listeners(service.url)
    for payload, fields in BAD_SUBSCRIPTIONS:
        ack = await listener.subscribe(payload)
        assert ack["ok"] is False, payload
        assert ack["error"]["code"] == "invalid_filter"
        assert set(ack["error"]["fields"]) == fields, payload
    assert service.hub is not None
    assert not service.hub.rooms
    ack = await listener.subscribe({"status": "pending"})
    assert ack["ok"] is True
    assert ack["snapshot"] == 0 and listener.snapshot() == []
    left = await listener.sio.call("unsubscribe", {"status": 7}, timeout=5)
    assert left["ok"] is False
    assert set(left["error"]["fields"]) == {"status"}
