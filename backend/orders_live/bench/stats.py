"""The benchmark's arithmetic: percentiles, and loss / duplicate / order counting."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..100) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "count": float(len(values)),
    }


@dataclass
class SequenceCheck:
    """Versions of each order as one client received them, against what was written.

    A version above the next expected one is a gap (``lost`` by the difference); one at
    or below the last seen is a ``duplicate`` when it was seen, else ``out_of_order``.
    """

    last: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0

    def start(self, order_id: int, version: int) -> None:
        """The version a client starts from (its snapshot)."""
        self.last[order_id] = version
        self.seen[order_id] = {version}

    def add(self, order_id: int, version: int) -> None:
        self.received += 1
        last = self.last.get(order_id, 0)
        seen = self.seen.setdefault(order_id, set())
        if version in seen:
            self.duplicated += 1
            return
        seen.add(version)
        if version < last:
            self.out_of_order += 1
            self.lost -= 1  # counted as a gap when the later version came first
            return
        self.lost += version - last - 1
        self.last[order_id] = version

    def finish(self, final_versions: dict[int, int]) -> None:
        """Count as lost whatever never arrived up to each order's final version."""
        for order_id, final in final_versions.items():
            self.lost += max(0, final - self.last.get(order_id, 0))
            self.last[order_id] = max(final, self.last.get(order_id, 0))


def merge_counts(checks: Iterable[dict[str, int]]) -> dict[str, int]:
    total = {"received": 0, "lost": 0, "duplicated": 0, "out_of_order": 0}
    for check in checks:
        for key in total:
            total[key] += check[key]
    return total
