"""Fast tier: the boundary that turns raw change documents (MongoDB or nx-27017) into Changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orders_live.sources.mongo import mongo_source
from orders_live.sources.mongo.documents import change_from_event, order_from_document, parse_date, parse_id

pytestmark = pytest.mark.fast

STORED = {"_id": 7, "customer_name": "Ada", "product_name": "Lamp", "status": "shipped", "version": 2}
WHEN = datetime(2026, 11, 24, 1, 2, 3, 456000, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        WHEN,
        WHEN.replace(tzinfo=None),
        {"$date": "2026-11-24T01:02:03.456000"},
        {"$date": "2026-11-24T01:02:03.456Z"},
        {"$date": 1795482123456},
        {"$date": {"$numberLong": "1795482123456"}},
        "2026-11-24 01:02:03.456000",
    ],
)
def test_every_date_form_the_servers_return_is_one_utc_instant(raw: object) -> None:
    assert parse_date(raw) == WHEN


def test_ids_come_as_ints_or_as_nx_strings_but_nothing_else() -> None:
    assert parse_id(7) == 7
    assert parse_id("7") == 7
    for bad in (True, "seven", 7.0, None):
        with pytest.raises(ValueError):  # noqa: PT011
            parse_id(bad)


def test_an_nx_insert_with_a_string_key_and_dollar_date_becomes_a_clean_change() -> None:
    event = {
        "operationType": "insert",
        "documentKey": {"_id": "7"},
        "wallTime": WHEN,
        "updateDescription": None,
        "fullDocument": {**STORED, "updated_at": {"$date": "2026-11-24T01:02:03.456000"}},
    }
    change = change_from_event(event, "nx:5")
    assert change is not None
    assert change.wire() == {
        "op": "insert",
        "id": 7,
        "position": "nx:5",
        "committed_at": "2026-11-24T01:02:03.456Z",
        "order": {
            "id": 7,
            "customer_name": "Ada",
            "product_name": "Lamp",
            "status": "shipped",
            "updated_at": "2026-11-24T01:02:03.456Z",
            "version": 2,
        },
    }


def test_a_delete_knows_its_last_status_from_a_pre_image_or_the_nx_document() -> None:
    nx_delete = {
        "operationType": "delete",
        "documentKey": {"_id": "7"},
        "wallTime": WHEN,
        "fullDocument": {**STORED, "updated_at": WHEN},
    }
    mongo_delete = {
        "operationType": "delete",
        "documentKey": {"_id": 7},
        "wallTime": WHEN,
        "fullDocumentBeforeChange": {**STORED, "status": "pending"},
    }
    bare_delete = {"operationType": "delete", "documentKey": {"_id": 7}, "wallTime": WHEN}
    statuses = [change_from_event(e, "p") for e in (nx_delete, mongo_delete, bare_delete)]
    assert [(c.op, c.order, c.before_status) for c in statuses if c] == [
        ("delete", None, "shipped"),
        ("delete", None, "pending"),
        ("delete", None, None),
    ]


def test_an_update_without_a_post_image_is_left_to_the_lookup_and_other_ops_are_ignored() -> None:
    assert change_from_event({"operationType": "update", "documentKey": {"_id": 7}}, "p") is None
    assert change_from_event({"operationType": "createIndexes", "documentKey": {"_id": 7}}, "p") is None


def test_a_document_that_is_not_an_order_is_refused() -> None:
    with pytest.raises((KeyError, ValueError)):
        order_from_document({"_id": 1, "customer_name": "x"})


def test_positions_of_either_server_are_ordered_and_anything_else_is_not_a_position() -> None:
    source = mongo_source("mongodb://127.0.0.1:1/?directConnection=true")
    key = source.feed.position_key
    assert key("nx:9") is not None
    assert key("nx:10") > key("nx:9")
    assert key("8263A1B2C3000000012B0429") < key("8263A1B2C4000000012B0429")  # type: ignore[operator]
    for bad in ("", "nx:", "nx:-1", "{'$gt': 1}", "zz", "nx:1; drop"):
        assert key(bad) is None
