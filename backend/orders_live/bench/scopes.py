"""Who the bench's clients are: the service in JWT mode, customer scopes, and what each client
should receive (``orders-live bench --customers N``).

Three kinds of case (``Case.scope``), on the same service, orders and writer:
- ``customer``: client ``i`` holds a customer token for ``Customer {i mod N}`` and subscribes to
  ``{}``; it must get exactly the changes of that customer's orders, and nothing of another's.
- ``viewer``: every client holds a viewer token (``--unscoped``): each write reaches every client.
- ``order``: every client holds a viewer token and subscribes to one order (``{"id": n}``),
  the first order of ``Customer {i mod N}`` (``--unscoped-orders``): each write reaches as many
  clients as a ``customer`` run's do, with no scope: what a scope costs beyond the narrower fan-out.
- ``idle``: every client is scoped to a customer no order belongs to (``Idle {i mod N}``), so it
  receives nothing: the run's CPU is that of the writes and of idle connections alone, the fixed
  cost the other two are measured against (``stats.marginal_us_per_delivery``).
Without ``--customers`` the bench runs as before: open mode, no tokens (``Scopes`` is None).

Each client has an identity (``sub``) of its own, so that the per-identity connection and
subscribe limits never refuse one. The writer holds a ``staff`` token; the service gets a write
rate high enough for it (``environment``).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from orders_live.identity.minting import mint_token

Mode = Literal["customer", "viewer", "order", "idle"]
SECRET_ENV = "ORDERS_LIVE_BENCH_JWT_SECRET"  # how the client processes get the secret (not argv)
WRITE_RATE = 100_000  # the service's write rate per identity: the REST writer is never limited
TOKEN_TTL = 6 * 3600.0  # seconds: longer than any sweep


def customer_name(n: int) -> str:
    return f"Customer {n:03d}"


def idle_name(n: int) -> str:
    """A customer no order belongs to: the ``idle`` run's clients are scoped to these."""
    return f"Idle {n:03d}"


def order_count(customers: int, at_least: int) -> int:
    """How many orders the writer cycles through: ``at_least``, rounded up so that every customer
    owns the same number of them (at least one)."""
    return customers * max(1, math.ceil(at_least / customers))


def owners(customers: int, orders: int) -> list[str]:
    """The owner of each of the writer's orders in turn: round robin, so that the writer, which
    cycles through them, writes to the customers in turn too."""
    return [customer_name(k % customers) for k in range(orders)]


def client_customer(mode: Mode | None, index: int, customers: int) -> str | None:
    """The customer client ``index`` is scoped to (None: a viewer or open mode: every order)."""
    if mode == "customer":
        return customer_name(index % customers)
    if mode == "idle":
        return idle_name(index % customers)
    return None


def client_order(mode: Mode | None, index: int, customers: int, orders: dict[str, list[int]]) -> int | None:
    """The one order an ``order`` run's client ``index`` subscribes to (None: any other run)."""
    if mode != "order":
        return None
    return orders[customer_name(index % customers)][0]


def client_token(mode: Mode, index: int, customers: int, secret: str) -> str:
    customer = client_customer(mode, index, customers)
    sub = f"bench-{mode}-{index}"  # one identity per client: no per-identity limit refuses one
    if customer is None:
        return mint_token("viewer", sub=sub, ttl=TOKEN_TTL, secret=secret)
    return mint_token("customer", sub=sub, customer=customer, ttl=TOKEN_TTL, secret=secret)


@dataclass(frozen=True)
class Scopes:
    """A bench in JWT mode over ``customers`` customers (each case says what its clients hold)."""

    customers: int
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48), repr=False)

    def environment(self) -> dict[str, str]:
        """What the service process needs: JWT mode, and a write rate the writer never reaches."""
        return {"ORDERS_LIVE_JWT_SECRET": self.secret, "ORDERS_LIVE_WRITE_RATE": str(WRITE_RATE)}

    def staff_headers(self) -> dict[str, str]:
        """The writer's and the bench's own REST calls (setup, listings)."""
        token = mint_token("staff", sub="bench-writer", ttl=TOKEN_TTL, secret=self.secret)
        return {"Authorization": f"Bearer {token}"}


def orders_by_customer(owner_of: dict[int, str]) -> dict[str, list[int]]:
    """Each customer's order ids, from each order's owner (the scope a customer's client must
    see exactly)."""
    found: dict[str, list[int]] = {}
    for order_id, customer in sorted(owner_of.items()):
        found.setdefault(customer, []).append(order_id)
    return found


def expected_changes(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    """Changes each order went through between two listings (id → version): what a client
    that sees the order must receive of it. An order first seen in ``after`` was inserted."""
    return {order_id: version - before.get(order_id, 0) for order_id, version in after.items()}


def expected_for(scope: set[int] | None, changes: dict[int, int]) -> int:
    """How many changes a client whose scope is ``scope`` (None: every order) must receive."""
    if scope is None:
        return sum(changes.values())
    return sum(count for order_id, count in changes.items() if order_id in scope)


def spread_sample(
    clients: int, sample: int, customer_of: Callable[[int], str | None], taken: dict[str | None, int]
) -> list[int]:
    """``sample`` of ``clients`` indexes, one in each of ``sample`` equal stretches of the
    connection order (the service writes to its clients in the order they joined); within a
    stretch, the first client whose customer was sampled least so far (``taken``, shared across
    processes and updated), so that the sampled clients cover as many customers as they can."""
    if sample >= clients:
        stretches = [range(n, n + 1) for n in range(clients)]
    else:
        stretches = [range(n * clients // sample, (n + 1) * clients // sample) for n in range(sample)]
    chosen = []
    for stretch in stretches:
        pick = min(stretch, key=lambda i: (taken.get(customer_of(i), 0), i))
        taken[customer_of(pick)] = taken.get(customer_of(pick), 0) + 1
        chosen.append(pick)
    return chosen


def orders_seen(customer: str | None, order: int | None, held: dict[str, list[int]]) -> set[int] | None:
    """The orders a client sees: its one order, or its customer's, or (None) every order."""
    if order is not None:
        return {order}
    return set(held.get(customer, ())) if customer is not None else None
