"""Fast tier: the benchmark's own arithmetic, on small synthetic inputs (no timing)."""

from __future__ import annotations

import math

import pytest

from orders_live.bench.clients import ChunkedBody
from orders_live.bench.report import markdown, stable_rates
from orders_live.bench.stats import SequenceCheck, merge_counts, percentile, summary

pytestmark = pytest.mark.fast


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert math.isnan(percentile([], 50))
    assert summary([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0, "count": 3.0}


def test_a_clean_sequence_counts_nothing_wrong() -> None:
    check = SequenceCheck()
    check.start(1, 4)
    for version in (5, 6, 7):
        check.add(1, version)
    check.add(2, 1)
    check.finish({1: 7, 2: 1})
    assert (check.received, check.lost, check.duplicated, check.out_of_order) == (4, 0, 0, 0)


def test_gaps_duplicates_reordering_and_missing_tails_are_counted() -> None:
    check = SequenceCheck()
    check.start(1, 1)
    check.add(1, 2)
    check.add(1, 2)  # duplicate
    check.add(1, 4)  # 3 is missing (for now)
    check.add(1, 3)  # late: out of order, no longer lost
    check.add(1, 6)  # 5 is lost
    check.finish({1: 8})  # 7 and 8 never came
    assert (check.duplicated, check.out_of_order, check.lost) == (1, 1, 3)


def test_counts_add_up_across_clients_and_the_table_has_a_row_per_result() -> None:
    assert merge_counts([{"received": 2, "lost": 1, "duplicated": 0, "out_of_order": 0, "foreign": 1}] * 2) == {
        "received": 4,
        "lost": 2,
        "duplicated": 0,
        "out_of_order": 0,
        "foreign": 2,
    }
    row = {
        "transport": "socketio",
        "clients": 2,
        "writes_per_s": 5.0,
        "deliveries_per_s": 10.0,
        "latency_ms": summary([1.0, 2.0]),
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "server_cpu_per_core": 0.1,
        "server_us_per_delivery": 12.5,
        "server_peak_rss_mb": 60.0,
        "poll_requests_per_s": None,
        "poll_empty_share": None,
        "valid": False,
    }
    table = markdown([row, row])
    assert table.count("\n| socketio | 2 | 5 |") == 2
    assert "| NO |" in table


def test_the_highest_stable_rate_skips_late_lossy_and_invalid_runs() -> None:
    def row(rate: float, p99: float, lost: int = 0, valid: bool = True) -> dict[str, object]:
        return {
            "transport": "socketio",
            "clients": 10,
            "writes_per_s": rate,
            "latency_ms": {"p99": p99},
            "lost": lost,
            "valid": valid,
        }

    rows = [row(5, 20), row(50, 90), row(70, 240, valid=False), row(100, 300), row(120, 100, lost=3)]
    assert stable_rates(rows) == "- socketio × 10 clients: highest stable rate 50 writes/s (tried 5, 50, 70, 100, 120)"


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_the_sse_client_decodes_chunks_that_do_not_line_up_with_events(step: int) -> None:
    """nginx re-chunks an event stream at its buffer size: an event may span chunks."""
    pieces = [b'event: a\ndata: {"x"', b": 1}\n\n", b"event: b\n"]
    raw = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    body = ChunkedBody()
    decoded = b"".join(body.feed(raw[at : at + step]) for at in range(0, len(raw), step))
    assert decoded == b'event: a\ndata: {"x": 1}\n\nevent: b\n'
