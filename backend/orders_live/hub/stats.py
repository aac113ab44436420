"""What the hub measures as changes go by (read by /metrics)."""

from __future__ import annotations

import bisect
import time
from collections import Counter
from datetime import datetime

FANOUT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


class HubStats:
    def __init__(self) -> None:
        self.fanout_counts = [0] * (len(FANOUT_BUCKETS) + 1)  # the last one is +Inf
        self.fanout_sum = 0.0
        self.stream_lag = 0.0  # seconds from the change's wall time to its fan-out, last change
        self.checkpoint_saved_at: float | None = None
        self.resyncs: Counter[str] = Counter()

    def fanned_out(self, seconds: float, committed_at: str) -> None:
        self.fanout_counts[bisect.bisect_left(FANOUT_BUCKETS, seconds)] += 1
        self.fanout_sum += seconds
        committed = datetime.fromisoformat(committed_at.replace("Z", "+00:00")).timestamp()
        self.stream_lag = max(0.0, time.time() - committed)
