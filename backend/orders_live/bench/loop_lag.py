"""The service's event-loop lag over a case's writing window, from its own Prometheus histogram
``orders_live_event_loop_lag_seconds`` (read from /metrics before and after the window).

A histogram keeps counts per bucket, not the samples: the window's counts are the difference
of the cumulative bucket counts, and its p99 and max are bucket **upper bounds** (the smallest
``le`` whose count reaches 99 % of the window's samples, and all of them). A max past the last
finite bound is ``math.inf``. A service without the metric gives None. Under ``serve --workers`` each worker answers
/metrics for itself (``orders_live_worker_info{worker=…}`` names it): the counts are kept per
worker (``worker_of``) and only the workers read both before and after are summed
(``matched``).
"""

from __future__ import annotations

import math
from typing import Any

METRIC = "orders_live_event_loop_lag_seconds"

Buckets = dict[float, float]  # upper bound (seconds; inf for +Inf) → cumulative count


def parse_buckets(text: str, metric: str = METRIC) -> Buckets | None:
    """The cumulative bucket counts of ``metric`` in a /metrics text, summed over its other
    labels (a worker's, for instance); None when the service does not export it."""
    prefix = metric + "_bucket{"
    found: Buckets = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        labels, _, value = line[len(prefix) :].partition("} ")
        bound = next((item.split("=", 1)[1].strip('"') for item in labels.split(",") if item.startswith("le=")), None)
        if bound is None:
            continue
        upper = math.inf if bound == "+Inf" else float(bound)
        found[upper] = found.get(upper, 0.0) + float(value.split()[0])
    return found or None


def worker_of(text: str) -> str | None:
    """The worker that answered a /metrics text (None: no workers)."""
    for line in text.splitlines():
        if line.startswith("orders_live_worker_info{"):
            for item in line[len("orders_live_worker_info{") :].split("}", 1)[0].split(","):
                key, _, value = item.partition("=")
                if key == "worker":
                    return value.strip('"')
    return None


def matched(before: dict[str, Buckets], after: dict[str, Buckets]) -> tuple[Buckets | None, Buckets | None]:
    """The counts of the processes (instances, workers) read both before and after, summed."""
    common = sorted(set(before) & set(after))
    if not common:
        return None, None
    summed: list[Buckets] = []
    for side in (before, after):
        total: Buckets = {}
        for key in common:
            for bound, count in side[key].items():
                total[bound] = total.get(bound, 0.0) + count
        summed.append(total)
    return summed[0], summed[1]


def lag_over_window(before: Buckets | None, after: Buckets | None) -> dict[str, Any] | None:
    """The window's samples, p99 and max (seconds, bucket upper bounds) from the cumulative
    counts before and after it; None without the metric."""
    if before is None or after is None:
        return None
    bounds = sorted(after)
    cumulative = [after[bound] - before.get(bound, 0.0) for bound in bounds]
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return {"samples": 0, "p99_s": None, "max_s": None, "as": "bucket upper bounds"}
    p99 = next(bound for bound, count in zip(bounds, cumulative, strict=True) if count >= 0.99 * total)
    top = next(bound for bound, count in zip(bounds, cumulative, strict=True) if count >= total)
    return {"samples": int(total), "p99_s": p99, "max_s": top, "as": "bucket upper bounds"}
