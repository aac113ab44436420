"""The PostgreSQL change log's JSON of an orders row → the order handed out
(``order_json_from_log``): its direct path for the usual shape gives exactly what the model gives,
and every other shape still goes through the model, converted or refused as before."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from orders_live.sources.postgres.documents import order_from_row, order_json_from_log

pytestmark = pytest.mark.fast


def by_model(values: dict[str, Any]) -> dict[str, Any]:
    return order_from_row(values).to_json()


def to_jsonb_time(moment: datetime, offset_hours: int = 0) -> str:
    """``updated_at`` as PostgreSQL's ``to_jsonb`` writes it in a session of that offset."""
    local = moment.astimezone(timezone(timedelta(hours=offset_hours)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if local.microsecond:
        text += "." + f"{local.microsecond:06d}".rstrip("0")
    sign = "+" if offset_hours >= 0 else "-"
    return f"{text}{sign}{abs(offset_hours):02d}:00"


def test_the_direct_path_gives_what_the_model_gives() -> None:
    rng = random.Random(23)
    for _ in range(2_000):
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**13))
        moment = moment.replace(microsecond=rng.choice([0, 120_000, 123_000, 123_456, 5, rng.randrange(10**6)]))
        values = json.loads(
            json.dumps(
                {
                    "id": rng.randrange(1, 10**12),
                    "customer_name": rng.choice(["Ada", "Zoë 🚀", " spaced "]),
                    "product_name": "P",
                    "status": rng.choice(["pending", "shipped", "delivered"]),
                    "updated_at": to_jsonb_time(moment, rng.choice([0, 0, 0, 1, -5])),
                    "version": rng.randrange(1, 10**6),
                    "extra_column": "a column the table gained",
                }
            )
        )
        assert order_json_from_log(values) == by_model(values), values


@pytest.mark.parametrize(
    "change",
    [
        {"id": 0},
        {"version": 0},
        {"status": "lost"},
        {"status": None},
        {"customer_name": 5},
        {"updated_at": "yesterday"},
        {"id": True},
    ],
)
def test_another_shape_goes_through_the_model(change: dict[str, Any]) -> None:
    values = {
        "id": 1,
        "customer_name": "Ada",
        "product_name": "P",
        "status": "pending",
        "updated_at": "2026-12-05T02:07:49.123+00:00",
        "version": 1,
        **change,
    }
    try:
        expected: Any = by_model(values)
    except ValueError as exc:
        expected = type(exc)
    try:
        found: Any = order_json_from_log(values)
    except ValueError as exc:
        found = type(exc)
    assert found == expected
