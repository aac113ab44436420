"""What each client was owed, against what it got: lost, duplicated, out of order, foreign.

A client is owed the changes of the orders it sees (every order, its customer's, or its one
order's) between two
listings of the table, one before the case and one after it settled. A sampled client's
``SequenceCheck`` is finished against the final versions of the orders in its scope; a counting
client's count is compared with what it was owed (``stats.count_check``).
"""

from __future__ import annotations

from typing import Any

from orders_live.bench.scopes import expected_changes, expected_for, orders_by_customer, orders_seen
from orders_live.bench.stats import COUNTS, SequenceCheck, count_check, merge_counts

Listing = dict[int, tuple[int, str]]  # every order: id → (version, customer_name)


def account(
    transport: str, reports: list[dict[str, Any]], before: Listing, after: Listing
) -> tuple[int, dict[str, int]]:
    """The deliveries the clients of ``reports`` (each generator's) were owed in all, and their
    counts summed. Pollers see each order's latest version, not every one: only what they
    received and whether any of it was foreign is counted for them."""
    final = {order_id: version for order_id, (version, _) in after.items()}
    changes = expected_changes({order_id: version for order_id, (version, _) in before.items()}, final)
    held = orders_by_customer({order_id: owner for order_id, (_, owner) in after.items()})

    def scope_of(raw: dict[str, Any]) -> set[int] | None:
        return orders_seen(raw["customer"], raw.get("order"), held)

    checks, owed = [], 0
    for report in reports:
        for raw in report["checks"]:
            check = SequenceCheck(
                last={int(k): v for k, v in raw["last"].items()},
                scope=scope_of(raw),
                **{k: raw[k] for k in COUNTS},
            )
            check.finish(final)
            checks.append(check.counts())
            owed += expected_for(check.scope, changes)
        for raw in report["counted"]:
            expected = expected_for(scope_of(raw), changes)
            if transport != "polling":
                checks.append(count_check(expected, raw["counted"], raw["foreign"], raw["foreign_snapshot"]))
            owed += expected
    counts = merge_counts(checks)
    if transport == "polling":
        counts = dict.fromkeys(counts, 0) | {"received": counts["received"], "foreign": counts["foreign"]}
    return owed, counts
