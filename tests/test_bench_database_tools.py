"""The bench's own database tools (``orders_live.bench.bulk``, and ``bench.direct_writer`` run
as the bench runs it, a process of its own): they write through the drivers, beside a running
service, and MongoDB's ids come from the service's counter as ``domain.order_numbers`` writes
it down, so the two never take the same id."""

from __future__ import annotations

import aiohttp
import pytest

from conftest import database_orders, running_service, settings_for, until
from orders_live.bench.bulk import insert_orders
from orders_live.bench.direct_writer import INSERT_EVERY
from orders_live.bench.writer import write_externally
from orders_live.client.rest import OrdersClient
from orders_live.domain import order_numbers


@pytest.mark.fast
def test_the_ids_a_take_took_end_at_the_counter() -> None:
    assert order_numbers.taken({"seq": 10}, 3) == range(8, 11)
    assert list(order_numbers.taken({"seq": 1})) == [1]
    assert order_numbers.take(5) == {"$inc": {"seq": 5}}
    assert order_numbers.counter() == {"_id": "orders"}


@pytest.mark.database
async def test_bench_writes_interleave_with_the_service_without_a_shared_id(database_url: str) -> None:
    async with running_service(settings_for(database_url)) as service, aiohttp.ClientSession() as session:
        client = OrdersClient(service.url, session)
        first = await client.create("Ann", "Lamp")
        await insert_orders(database_url, 25)
        second = await client.create("Bob", "Desk")
        assert second["id"] == first["id"] + 26  # the bulk insert took the 25 ids between them
        writes = int(INSERT_EVERY * 2)  # two of them insert, the others update the two orders
        ids = [first["id"], second["id"]]
        assert await write_externally(database_url, ids, rate=200.0, duration=writes / 200.0) == writes
        third = await client.create("Cy", "Chair")
        assert third["id"] == second["id"] + 3  # the external writer's two inserts took the ids between
        hub = service.hub
        assert hub is not None
        await until(lambda: hub.changes_in >= 3 + 25 + writes, within=30, what="every write in the change feed")
    orders = await database_orders(database_url)
    assert sorted(orders) == list(range(first["id"], third["id"] + 1))
    assert orders[first["id"]]["product_name"].startswith("bench ")
