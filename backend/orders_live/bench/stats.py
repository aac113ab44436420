"""The benchmark's arithmetic: percentiles; loss, duplicate, order and foreign-change counting;
the marginal CPU per delivery above a run without deliveries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


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


COUNTS = ("received", "lost", "duplicated", "out_of_order", "foreign")


@dataclass
class SequenceCheck:
    """Versions of each order as one client received them, against what was written.

    A version above the next expected one is a gap (``lost`` by the difference); one at
    or below the last seen is a ``duplicate`` when it was seen, else ``out_of_order``.
    A client scoped to some orders (``scope``: their ids; None: every order) must see only
    those: an order outside it, in its snapshot or in a change, is ``foreign`` (and not
    checked further), and only the orders in it are owed (``finish``).
    """

    last: dict[int, int] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
    received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    foreign: int = 0
    scope: set[int] | None = None

    def counts(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in COUNTS}

    def start(self, order_id: int, version: int) -> None:
        """The version a client starts from (its snapshot)."""
        if self.scope is not None and order_id not in self.scope:
            self.foreign += 1
            return
        self.last[order_id] = version
        self.seen[order_id] = {version}

    def add(self, order_id: int, version: int) -> None:
        self.received += 1
        if self.scope is not None and order_id not in self.scope:
            self.foreign += 1
            return
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
            if self.scope is not None and order_id not in self.scope:
                continue
            self.lost += max(0, final - self.last.get(order_id, 0))
            self.last[order_id] = max(final, self.last.get(order_id, 0))


def merge_counts(checks: Iterable[dict[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(COUNTS, 0)
    for check in checks:
        for key in total:
            total[key] += check.get(key, 0)
    return total


def count_check(expected: int, counted: int, foreign: int, foreign_snapshot: int = 0) -> dict[str, int]:
    """A counting client's figures: it received ``counted`` changes, ``foreign`` of them of
    orders outside its scope (and ``foreign_snapshot`` such orders in its snapshot), and was
    owed ``expected``: fewer of its own is loss, more is duplication (it cannot tell order)."""
    own = counted - foreign
    return {
        "received": counted,
        "lost": max(0, expected - own),
        "duplicated": max(0, own - expected),
        "out_of_order": 0,
        "foreign": foreign + foreign_snapshot,
    }


def marginal_us_per_delivery(
    cpu_s: float, window_s: float, deliveries: int, baseline_cpu_s: float, baseline_window_s: float
) -> float:
    """Server CPU per delivery above a run without deliveries (same writes, same number of
    connections, none of them receiving): ``(CPU/s − baseline CPU/s) × window / deliveries``,
    in µs. The baseline's CPU/s is what the writes (request, database, feed, index, history)
    and the idle connections cost; what is left is the delivering."""
    if not deliveries:
        return math.nan
    above = cpu_s / window_s - baseline_cpu_s / baseline_window_s
    return above * window_s / deliveries * 1e6


def attach_baselines(results: list[dict[str, Any]]) -> None:
    """Give each scoped or unscoped result the no-delivery baseline run (``scope`` ``idle``) of
    the same transport, clients and rate, if there is one: its CPU per core, and the marginal
    CPU per delivery above it (``marginal_us_per_delivery``)."""
    idle = {_shape(r): r for r in results if r.get("scope") == "idle"}
    for result in results:
        baseline = idle.get(_shape(result))
        if result.get("scope") in (None, "idle") or baseline is None:
            continue
        result["baseline_cpu_per_core"] = baseline["server_cpu_per_core"]
        result["server_marginal_us_per_delivery"] = marginal_us_per_delivery(
            result["server_cpu_s"],
            result["window_s"],
            result["deliveries"],
            baseline["server_cpu_s"],
            baseline["window_s"],
        )


def _shape(result: dict[str, Any]) -> tuple[Any, ...]:
    return (result["transport"], result["clients"], result["writes_per_s"], result.get("instances"))


SLOW_WRITE_MS = 250.0  # a write whose worst delivery took longer is a slow one
WORST_WRITES = 5


def merge_worst(parts: Iterable[dict[str, float]]) -> dict[str, float]:
    """Each write's worst latency over several generators' ``{stamp: worst ms}``."""
    worst: dict[str, float] = {}
    for part in parts:
        for stamp, latency in part.items():
            worst[stamp] = max(latency, worst.get(stamp, latency))
    return worst


def per_write(worst: dict[str, float], window_start: float) -> dict[str, Any]:
    """The sampled clients' latencies per write: ``worst`` maps each write's stamp (its start,
    wall-clock seconds, as the order's product name carries it) to the longest its delivery took
    to any sampled client (ms). How many writes were slower than ``SLOW_WRITE_MS``, and the
    ``WORST_WRITES`` slowest with their time since the window started (``window_start``,
    wall-clock): a periodic stall shows as slow writes at regular times."""
    slowest = sorted(worst.items(), key=lambda item: item[1], reverse=True)[:WORST_WRITES]
    return {
        "writes": len(worst),
        "over_250ms": sum(1 for latency in worst.values() if latency > SLOW_WRITE_MS),
        "worst_ms": summary(list(worst.values())),
        "slowest": [{"at_s": round(float(stamp) - window_start, 3), "max_ms": latency} for stamp, latency in slowest],
    }


def merge_endings(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The generators' ``endings`` together: counts summed, the first end the earliest, the last the latest."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "first_end_s":
                merged[key] = min(value, merged.get(key, value))
            elif key == "last_end_s":
                merged[key] = max(value, merged.get(key, value))
            else:
                merged[key] = merged.get(key, 0) + value
    return merged


def shutdown_counts(endings: dict[str, Any], clients: int) -> dict[str, Any]:
    """After a SIGTERM: the clients told to reconnect before the service exited (an Engine.IO
    close packet or a WebSocket close frame), those whose connection only closed before it did
    (TCP: a client reconnects as well, but cannot tell a stop from a broken network), those told
    to disconnect (Socket.IO's disconnect: a socket.io client then does not reconnect by
    itself), and the rest, dropped (reset, or ended only with the process)."""
    told = endings.get("close_before_exit", 0)
    closed = endings.get("tcp_before_exit", 0)
    disconnected = endings.get("disconnect_before_exit", 0)
    return {
        "told_to_reconnect": told,
        "closed_before_exit": closed,
        "told_to_disconnect": disconnected,
        "dropped": clients - told - closed - disconnected,
        "first_end_s": endings.get("first_end_s"),
        "last_end_s": endings.get("last_end_s"),
    }
