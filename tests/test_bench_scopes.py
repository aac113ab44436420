"""Fast tier: the bench's customer scopes (``orders-live bench --customers N``): who each client
is, what it is owed, how foreign changes are counted, and the marginal CPU per delivery above
the no-delivery baseline. No service process is started."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import jwt
import pytest

from orders_live.bench.accounting import Listing, account
from orders_live.bench.clients import Counter
from orders_live.bench.report import markdown, scope_comparison, stable_rates, write_report
from orders_live.bench.scopes import (
    Scopes,
    client_customer,
    client_token,
    customer_name,
    expected_changes,
    expected_for,
    order_count,
    orders_by_customer,
    owners,
    spread_sample,
)
from orders_live.bench.stats import (
    SequenceCheck,
    attach_baselines,
    count_check,
    marginal_us_per_delivery,
    summary,
)
from orders_live.cli.bench import _cases, add_bench_parser

pytestmark = pytest.mark.fast


def test_the_writers_orders_are_spread_evenly_over_the_customers_in_turn() -> None:
    assert order_count(100, 50) == 100  # one order each
    assert order_count(20, 50) == 60  # three each
    assert order_count(7, 7) == 7
    wanted = owners(3, 6)
    assert wanted == [customer_name(n) for n in (0, 1, 2, 0, 1, 2)]
    assert customer_name(7) == "Customer 007"


def test_each_client_holds_a_token_of_its_own_for_its_customer_or_a_viewers() -> None:
    secret = "s" * 48
    assert [client_customer("customer", i, 100) for i in (0, 99, 100, 201)] == [
        "Customer 000",
        "Customer 099",
        "Customer 000",
        "Customer 001",
    ]
    assert client_customer("idle", 5, 100) == "Idle 005"
    assert client_customer("viewer", 5, 100) is None
    assert client_customer(None, 5, 100) is None
    scoped = jwt.decode(client_token("customer", 101, 100, secret), secret, algorithms=["HS256"])
    assert (scoped["role"], scoped["customer"]) == ("customer", "Customer 001")
    other = jwt.decode(client_token("customer", 1, 100, secret), secret, algorithms=["HS256"])
    assert other["sub"] != scoped["sub"]  # the per-identity limits count per sub: none is shared
    viewer = jwt.decode(client_token("viewer", 3, 100, secret), secret, algorithms=["HS256"])
    assert viewer["role"] == "viewer" and "customer" not in viewer
    idle = jwt.decode(client_token("idle", 3, 100, secret), secret, algorithms=["HS256"])
    assert (idle["role"], idle["customer"]) == ("customer", "Idle 003")


def test_the_service_runs_in_jwt_mode_and_the_writer_is_never_rate_limited() -> None:
    scopes = Scopes(10)
    env = scopes.environment()
    assert len(env["ORDERS_LIVE_JWT_SECRET"]) >= 32
    assert float(env["ORDERS_LIVE_WRITE_RATE"]) >= 10_000
    token = scopes.staff_headers()["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, scopes.secret, algorithms=["HS256"])["role"] == "staff"
    assert scopes.secret not in repr(scopes)


def test_each_customer_is_owed_the_changes_of_its_own_orders() -> None:
    held = orders_by_customer({3: "Customer 001", 1: "Customer 000", 2: "Customer 001", 9: "Bench insert"})
    assert held == {"Customer 000": [1], "Customer 001": [2, 3], "Bench insert": [9]}
    changes = expected_changes({1: 4, 2: 1, 3: 7}, {1: 6, 2: 1, 3: 10, 9: 1})  # 9 was inserted
    assert changes == {1: 2, 2: 0, 3: 3, 9: 1}
    assert expected_for({1}, changes) == 2
    assert expected_for({2, 3}, changes) == 3
    assert expected_for(set(), changes) == 0  # a customer with no order (the baseline's)
    assert expected_for(None, changes) == 6  # a viewer: every change


def test_a_scoped_check_counts_foreign_orders_and_owes_only_its_own() -> None:
    check = SequenceCheck(scope={1, 2})
    check.start(1, 3)
    check.start(5, 1)  # another customer's order in the snapshot
    check.add(1, 4)
    check.add(5, 2)  # another customer's change
    check.add(5, 3)
    check.add(2, 1)
    check.finish({1: 5, 2: 1, 5: 3, 6: 9})  # 1's version 5 never came; 5 and 6 are not owed
    assert check.counts() == {"received": 4, "lost": 1, "duplicated": 0, "out_of_order": 0, "foreign": 3}
    assert 5 not in check.last and 6 not in check.last


def test_an_unscoped_check_has_no_foreign_orders() -> None:
    check = SequenceCheck()
    check.start(5, 1)
    check.add(5, 2)
    check.finish({5: 2, 6: 1})
    assert check.counts() == {"received": 1, "lost": 1, "duplicated": 0, "out_of_order": 0, "foreign": 0}


def test_a_counting_clients_figures_leave_its_foreign_changes_out() -> None:
    assert count_check(10, 10, 0) == {"received": 10, "lost": 0, "duplicated": 0, "out_of_order": 0, "foreign": 0}
    assert count_check(10, 12, 2)["lost"] == 0  # ten of its own, two foreign
    assert count_check(10, 12, 2)["duplicated"] == 0
    assert count_check(10, 9, 1) | {} == {"received": 9, "lost": 2, "duplicated": 0, "out_of_order": 0, "foreign": 1}
    assert count_check(10, 11, 0)["duplicated"] == 1
    # Foreign orders in its snapshot are foreign too, but were never counted as changes.
    assert count_check(10, 10, 0, 3) == {"received": 10, "lost": 0, "duplicated": 0, "out_of_order": 0, "foreign": 3}


def _order(order_id: int, customer: str, version: int = 2) -> dict[str, Any]:
    return {
        "id": order_id,
        "customer_name": customer,
        "product_name": "bench 1.0",
        "status": "pending",
        "version": version,
    }


def test_a_counting_client_spots_another_customers_order_in_a_frame() -> None:
    counter = Counter(sampled=False, customer="Customer 001")
    own = {"op": "update", "id": 1, "order": _order(1, "Customer 001"), "counts": {"pending": 1}}
    near = {"op": "update", "id": 2, "order": _order(2, "Customer 0011")}  # a name that starts like its own
    other = {"op": "update", "id": 3, "order": _order(3, "Customer 002")}
    frame = ("42" + json.dumps(["order_changes", {"changes": [own, near, other]}], separators=(",", ":"))).encode()
    counter.count(frame, frame.count(b'"op":'))
    assert (counter.counted, counter.foreign) == (3, 2)
    unscoped = Counter(sampled=False)
    unscoped.count(frame, 3)
    assert (unscoped.counted, unscoped.foreign) == (3, 0)
    page = {"orders": [_order(1, "Customer 001"), _order(3, "Customer 002")], "counts": {"pending": 2}}
    counter.count(("42" + json.dumps(["snapshot", page], separators=(",", ":"))).encode(), 0)  # a snapshot page
    assert counter.report() == {
        "customer": "Customer 001",
        "order": None,
        "counted": 3,
        "foreign": 2,
        "foreign_snapshot": 1,
    }


def test_a_sampled_client_checks_its_changes_against_its_scope() -> None:
    counter = Counter(sampled=True, customer="Customer 001", scope={1})
    counter.snapshot([_order(1, "Customer 001", 1)])
    counter.changes([{"op": "update", "id": 1, "order": _order(1, "Customer 001", 2)}])
    counter.changes([{"op": "update", "id": 3, "order": _order(3, "Customer 002", 2)}])
    report = counter.report()
    assert report["customer"] == "Customer 001"
    assert (report["received"], report["foreign"], report["last"]) == (2, 1, {"1": 2})


def test_the_accounts_of_sampled_and_counting_clients_add_up() -> None:
    before = {1: (1, "Customer 000"), 2: (1, "Customer 001")}
    after = {1: (4, "Customer 000"), 2: (3, "Customer 001")}  # three writes to 1, two to 2
    sampled = {"customer": "Customer 000", "last": {"1": 4}, "received": 3, "lost": 0, "duplicated": 0}
    sampled |= {"out_of_order": 0, "foreign": 0}
    late = {"customer": "Customer 001", "last": {"2": 2}, "received": 1, "lost": 0, "duplicated": 0}
    late |= {"out_of_order": 0, "foreign": 1}  # missed version 3 and saw a foreign change
    counted = [
        {"customer": "Customer 000", "counted": 3, "foreign": 0, "foreign_snapshot": 0},
        {"customer": "Customer 001", "counted": 1, "foreign": 0, "foreign_snapshot": 0},  # one of two
        {"customer": "Customer 001", "counted": 3, "foreign": 1, "foreign_snapshot": 2},  # both, and a foreign one
    ]
    report = {"checks": [sampled, late], "counted": counted}
    owed, counts = account("socketio", [report], before, after)
    assert owed == 3 + 2 + 3 + 2 + 2
    assert counts == {"received": 11, "lost": 2, "duplicated": 0, "out_of_order": 0, "foreign": 4}
    _, counts = account("polling", [report], before, after)  # pollers see the latest versions only
    assert counts == {"received": 4, "lost": 0, "duplicated": 0, "out_of_order": 0, "foreign": 1}
    viewer = {"customer": None, "last": {"1": 4, "2": 3}, "received": 5, "lost": 0, "duplicated": 0}
    viewer |= {"out_of_order": 0, "foreign": 0}
    owed, counts = account(
        "socketio",
        [{"checks": [viewer], "counted": [{"customer": None, "counted": 5, "foreign": 0, "foreign_snapshot": 0}]}],
        before,
        after,
    )
    assert (owed, counts["lost"], counts["foreign"]) == (10, 0, 0)


def test_the_sampled_clients_cover_the_customers_across_processes() -> None:
    customers, taken = 100, dict[str | None, int]()
    chosen = []
    for first in (0, 500):  # two processes of 500 clients, 50 sampled each
        local = spread_sample(500, 50, lambda n, at=first: client_customer("customer", at + n, customers), taken)
        assert all(n * 10 <= i < (n + 1) * 10 for n, i in enumerate(local))  # one in each stretch of ten
        chosen += [client_customer("customer", first + i, customers) for i in local]
    assert len(set(chosen)) == 100
    assert spread_sample(10, 4, lambda _: None, {}) == [0, 2, 5, 7]  # unscoped: evenly spread, as before
    assert spread_sample(3, 5, lambda _: None, {}) == [0, 1, 2]


def test_the_marginal_cost_per_delivery_is_what_the_deliveries_add_to_the_baseline() -> None:
    # 13 s windows: the baseline used 1.3 s (10 % of a core), the run 3.9 s (30 %), for 100,000 deliveries.
    assert marginal_us_per_delivery(3.9, 13.0, 100_000, 1.3, 13.0) == pytest.approx(26.0)
    assert marginal_us_per_delivery(3.9, 13.0, 100_000, 1.4, 14.0) == pytest.approx(26.0)  # per second
    assert math.isnan(marginal_us_per_delivery(1.0, 13.0, 0, 1.0, 13.0))


def _result(scope: str | None, cpu: float, deliveries: int, rate: float = 50.0) -> dict[str, Any]:
    result: dict[str, Any] = {
        "transport": "socketio",
        "clients": 1000,
        "writes_per_s": rate,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / 10,
        "latency_ms": summary([5.0, 9.0] if deliveries else []),
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "foreign": 0,
        "server_cpu_s": cpu,
        "window_s": 13.0,
        "server_cpu_per_core": cpu / 13.0,
        "server_us_per_delivery": cpu / deliveries * 1e6 if deliveries else math.nan,
        "server_peak_rss_mb": 120.0,
        "poll_requests_per_s": None,
        "poll_empty_share": None,
        "valid": True,
    }
    if scope is not None:
        result |= {"scope": scope, "customers": 100, "case": f"socketio, {scope}, 100 customers"}
    return result


def test_each_run_is_paired_with_its_baseline_and_the_report_shows_both_costs() -> None:
    results = [
        _result("idle", 1.3, 0),
        _result("customer", 1.56, 5_000),
        _result("idle", 0.5, 0, rate=5.0),
        _result("viewer", 3.9, 100_000, rate=7.0),  # no baseline at its rate
    ]
    attach_baselines(results)
    assert results[1]["server_marginal_us_per_delivery"] == pytest.approx(52.0)
    assert results[1]["baseline_cpu_per_core"] == pytest.approx(0.1)
    assert "server_marginal_us_per_delivery" not in results[0]
    assert "server_marginal_us_per_delivery" not in results[3]
    table = markdown(results)
    assert "| foreign | baseline CPU/core | marginal µs/delivery |" in table
    assert "| socketio, customer, 100 customers | 1000 | 50 | 500 |" in table
    assert table.splitlines()[1].count("---") == 21
    assert "| 0 | 10% | 52.0 |" in table  # the customer row: foreign, baseline, marginal
    assert table.splitlines()[-1].endswith("| – | – | – |")  # a viewer's foreign is not checked
    comparison = scope_comparison(results)
    assert comparison.count("\n| socketio,") == 4
    assert "| marginal µs/delivery | fan-out µs/delivery |" in comparison
    assert "idle" not in stable_rates(results)
    assert scope_comparison([_result(None, 1.0, 10)]) == ""


def test_the_cli_puts_the_baseline_before_each_push_case() -> None:
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers())
    args = parser.parse_args(["bench", "--customers", "100", "--rates", "5,50", "--poll-clients", "0"])
    cases = _cases(args)
    shapes = [(c.transport, c.rate, c.scope) for c in cases]
    assert shapes == [
        ("socketio", 5, "idle"),
        ("socketio", 5, "customer"),
        ("socketio", 50, "idle"),
        ("socketio", 50, "customer"),
        ("sse", 5, "idle"),
        ("sse", 5, "customer"),
        ("sse", 50, "idle"),
        ("sse", 50, "customer"),
    ]
    args = parser.parse_args(["bench", "--customers", "100", "--unscoped", "--no-baseline", "--rates", "50"])
    assert [(c.transport, c.scope) for c in _cases(args)] == [
        ("socketio", "viewer"),
        ("sse", "viewer"),
        ("polling", "viewer"),
    ]
    args = parser.parse_args(["bench", "--rates", "50", "--sse-clients", "0", "--poll-clients", "0"])
    assert [(c.transport, c.scope) for c in _cases(args)] == [("socketio", None)]


def test_results_json_stays_strict_json_when_a_run_has_no_deliveries(tmp_path: Any) -> None:
    results = [_result("idle", 1.3, 0), _result("customer", 1.56, 5_000)]
    attach_baselines(results)
    write_report(tmp_path, results, 2, 100, None, 3.0)
    written = json.loads((tmp_path / "results.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    assert written["results"][0]["server_us_per_delivery"] is None
    assert written["results"][0]["latency_ms"]["p50"] is None
    assert "| marginal µs/delivery | fan-out µs/delivery |" in (tmp_path / "results.md").read_text()


def test_a_client_of_one_order_is_owed_that_orders_changes_only() -> None:
    before: Listing = {1: (1, "Customer 000"), 2: (1, "Customer 000"), 3: (1, "Customer 001")}
    after: Listing = {1: (3, "Customer 000"), 2: (2, "Customer 000"), 3: (4, "Customer 001")}
    report = {
        "checks": [],
        "counted": [{"customer": None, "order": 2, "counted": 1, "foreign": 0, "foreign_snapshot": 0}],
    }
    owed, counts = account("socketio", [report], before, after)
    assert owed == 1  # order 2 went from v1 to v2; orders 1 and 3 are not its client's
    assert counts["lost"] == 0 and counts["duplicated"] == 0
