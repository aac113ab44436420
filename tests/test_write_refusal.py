"""Fast tier: the one answer of every source to a conditional write that matched no order
(``domain/write_refusal.py``), and the one reading of a stored status (``known_status``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orders_live.domain.order import STATUSES, Order, known_status
from orders_live.domain.source import OrderNotFound, VersionConflict
from orders_live.domain.write_refusal import refusal

pytestmark = pytest.mark.fast

ADA = Order(id=7, customer_name="Ada", product_name="Lamp", status="pending", updated_at=datetime.now(UTC), version=3)


def test_no_order_or_another_customers_is_not_found_and_says_nothing_of_it() -> None:
    for current, owner in ((None, None), (None, "Ada"), (ADA, "Grace")):
        refused = refusal(7, current, owner)
        assert isinstance(refused, OrderNotFound) and refused.order_id == 7
        assert str(refused) == "order 7 not found"


def test_an_order_at_another_version_is_a_conflict_with_the_order_as_it_is() -> None:
    for owner in (None, "Ada"):
        refused = refusal(7, ADA, owner)
        assert isinstance(refused, VersionConflict) and refused.current is ADA


@pytest.mark.parametrize("value", [None, "", "PENDING", "cancelled", 1, ["pending"], {"status": "pending"}])
def test_a_value_that_is_no_status_reads_as_none(value: Any) -> None:
    assert known_status(value) is None


def test_every_status_reads_as_itself() -> None:
    assert [known_status(status) for status in STATUSES] == list(STATUSES)
