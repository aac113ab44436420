"""``orders-live bench --dashboard``'s figures: what Chromium's counters and the page's record
become, and the report.

The counters are ``Performance.getMetrics``'s cumulative seconds of the page's main thread
(``TaskDuration`` and three of its parts); a case's share of each is its difference over the
case's window divided by the window's wall time. Commit→screen is, per change, the time the
page saw the change's stamped product name appear in the table (``performance.timeOrigin +
performance.now()``) less the change's commit time (its ``updated_at``), both read from this
machine's one clock.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orders_live.bench.stats import percentile

STAMP = "dashbench-"  # a change's product name: STAMP + its sequence number
PARTS = {"busy": "TaskDuration", "script": "ScriptDuration", "layout": "LayoutDuration", "style": "RecalcStyleDuration"}


@dataclass
class DashboardCase:
    name: str  # "500 rows, 5/s", "5,000 rows, burst"
    rows: int  # orders in the table
    rendered: int  # table rows in the page's DOM when the case began
    rate: float | None  # changes per second (0: idle); None: the burst
    window_s: float  # wall time the counters cover
    changes: int  # REST updates acknowledged and owed to the screen (a burst: each order's last)
    seen: int  # of them, seen on screen
    shares: dict[str, float]  # busy/script/layout/style, share of the window (0..1)
    p50_ms: float
    p95_ms: float
    max_ms: float
    last_on_screen_ms: float | None = None  # the burst: last commit → last row on screen
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """Every change owed was seen (there were some, unless the page was idle), and the counters
        covered a window."""
        return (self.changes > 0 or self.rate == 0) and self.seen == self.changes and self.window_s > 0


def shares(before: Mapping[str, float], after: Mapping[str, float], wall_s: float) -> dict[str, float]:
    """Each part's share of ``wall_s``: its counter's difference between two ``getMetrics``."""
    if wall_s <= 0:
        raise ValueError("the window must last")
    return {part: (after[counter] - before[counter]) / wall_s for part, counter in PARTS.items()}


def metrics(answer: Mapping[str, Any]) -> dict[str, float]:
    """``Performance.getMetrics``'s answer as name → value."""
    return {str(m["name"]): float(m["value"]) for m in answer["metrics"]}


def commit_ms(updated_at: str) -> float:
    """An order's ``updated_at`` (ISO 8601 with an offset, or Z) as epoch milliseconds."""
    return datetime.fromisoformat(updated_at.replace("Z", "+00:00")).timestamp() * 1000


def latencies(commits: Mapping[int, float], seen: Mapping[int, float]) -> list[float]:
    """Commit→screen, in ms, for each change seen (by sequence number)."""
    return [seen[n] - at for n, at in commits.items() if n in seen]


def finals(versions: Mapping[int, tuple[int, int]]) -> set[int]:
    """Of changes (sequence number → (order, the version it made)), each order's last: the one
    the order shows in the end, whatever order the changes were sent in."""
    last: dict[int, tuple[int, int]] = {}
    for n, (order, version) in versions.items():
        if order not in last or version > last[order][0]:
            last[order] = (version, n)
    return {n for _, n in last.values()}


def summarise(values: Sequence[float]) -> tuple[float, float, float]:
    """(p50, p95, max); NaN each without values."""
    return percentile(values, 50), percentile(values, 95), max(values) if values else math.nan


def burst_tail_ms(commits: Mapping[int, float], seen: Mapping[int, float]) -> float | None:
    """From the last commit to the last change on screen; None unless every change was seen."""
    if not commits or any(n not in seen for n in commits):
        return None
    return max(seen[n] for n in commits) - max(commits.values())


def _ms(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.0f}"


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{value * 100:.0f} %"


def markdown(cases: Sequence[DashboardCase]) -> str:
    lines = [
        "| case | rows (in DOM) | changes/s | busy | script | layout | style"
        " | commit→screen p50 / p95 / max ms | burst: last on screen ms | seen | valid |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        rate = "burst" if c.rate is None else "idle" if c.rate == 0 else f"{c.rate:g}"
        s = c.shares
        lines.append(
            f"| {c.name} | {c.rows:,} ({c.rendered:,}) | {rate} | {_pct(s['busy'])} | {_pct(s['script'])}"
            f" | {_pct(s['layout'])} | {_pct(s['style'])} | {_ms(c.p50_ms)} / {_ms(c.p95_ms)} / {_ms(c.max_ms)}"
            f" | {_ms(c.last_on_screen_ms)} | {c.seen:,}/{c.changes:,} | {'yes' if c.valid else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def _strict(value: Any) -> Any:
    """NaN as null (JSON has none)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def write_report(cases: Sequence[DashboardCase], out: Path, command: str, name: str = "dashboard") -> Path:
    """``out/<name>.json`` and ``.md``; the JSON's path."""
    out.mkdir(parents=True, exist_ok=True)
    body = {"command": command, "cases": [{**asdict(c), "valid": c.valid} for c in cases]}
    path = out / f"{name}.json"
    path.write_text(json.dumps(_strict(body), indent=2) + "\n")
    path.with_suffix(".md").write_text(f"`{command}`\n\n{markdown(cases)}")
    return path
