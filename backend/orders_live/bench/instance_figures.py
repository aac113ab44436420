"""``orders-live bench --instances``: the arithmetic and the report, apart from the processes.

Each case is one (database, K instances, rate). What a follower costs the database is the slope
of the database's CPU per commit against K (a least-squares line through the cases of one
database and rate); the report states it next to the table. The files, ``instances.json`` and
``instances.md``, hold one run per database: a run replaces the earlier run of its database and
keeps the others', so the two databases are measured by two commands into one table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orders_live.bench.stats import summary

SATURATED = 0.9  # the machine's busy share from which a case is not valid (as the runner's cases)
KEPT = 0.95  # the share of the asked rate a writer must reach to have kept it


def parse_counts(text: str) -> list[int]:
    """``"1,4,16"`` → ``[1, 4, 16]``: positive, each once, in the order given."""
    counts: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"{part!r} is not a positive number of instances")
        if int(part) in counts:
            raise ValueError(f"{part} is given twice")
        counts.append(int(part))
    return counts


def parse_rates(text: str) -> list[float]:
    """``"100,500"`` → ``[100.0, 500.0]``: positive writes per second."""
    rates: list[float] = []
    for part in text.split(","):
        try:
            rate = float(part)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a rate") from None
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"{part.strip()!r} is not a positive rate")
        rates.append(rate)
    return rates


def achieved_rate(stamps: Sequence[float]) -> float | None:
    """Writes per second between the first and the last write's stamp (when each was sent);
    None with fewer than two."""
    if len(stamps) < 2:
        return None
    span = max(stamps) - min(stamps)
    return (len(stamps) - 1) / span if span > 0 else None


def writer_kept(asked: float, planned: int, written: int, achieved: float | None) -> bool:
    """Every planned write succeeded, sent at ``KEPT`` of the asked rate or more."""
    return written == planned and achieved is not None and achieved >= KEPT * asked


def lag_figures(per_instance: Sequence[Sequence[float]]) -> dict[str, float]:
    """The lags (ms) of every instance together: p50, p95, p99, max, count; and the worst
    instance's own p99 (one slow follower shows there even when the others hide it)."""
    together = summary([lag for lags in per_instance for lag in lags])
    worst = max((summary(lags)["p99"] for lags in per_instance if lags), default=math.nan)
    return {**together, "worst_instance_p99": worst}


def per_follower(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per database and rate with two K or more: the least-squares line of the database's CPU
    per commit (ms) against K, ``base`` + ``per_follower`` × K."""
    lines = []
    groups: dict[tuple[str, float], list[tuple[int, float]]] = {}
    for result in results:
        cost = result.get("database_cpu_ms_per_commit")
        if cost is not None and not math.isnan(cost):
            groups.setdefault((result["database"], result["rate"]), []).append((result["instances"], cost))
    for (database, rate), points in groups.items():
        if len({k for k, _ in points}) < 2:
            continue
        mean_k = sum(k for k, _ in points) / len(points)
        mean_cost = sum(c for _, c in points) / len(points)
        slope = sum((k - mean_k) * (c - mean_cost) for k, c in points) / sum((k - mean_k) ** 2 for k, _ in points)
        base = mean_cost - slope * mean_k
        lines.append({"database": database, "rate": rate, "base_ms": base, "per_follower_ms": slope})
    return lines


def _cell(value: float | None, form: str) -> str:
    return "–" if value is None or math.isnan(value) else format(value, form)


def _lags(lag: dict[str, float]) -> str:
    return f"{_cell(lag['p50'], '.0f')} / {_cell(lag['p99'], '.0f')} / {_cell(lag['max'], '.0f')}"


HEAD = (
    "| database | instances | writes/s asked → sent | writer kept it | database CPU per commit "
    "| database CPU, of a core | lag p50 / p99 / max (from the commit) | worst instance p99 "
    "| all caught up after the writer | lost / dup / out of order | instances' CPU, of a core (sum; each) "
    "| writer and probes' CPU, of a core | machine busy (all this bench started) | valid |"
)


def row(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"| {r['database']} | {r['instances']} | {r['rate']:g} | failed: {r['error']} |" + " |" * 10
    lag = r["lag_ms"]
    achieved = _cell(r["achieved_rate"], ".0f")
    cores = r["instances_cpu_cores"]
    checks = f"{r['lost']} / {r['duplicated']} / {r['out_of_order']}" + ("" if r["tail_checked"] else " (gaps only)")
    each = cores / r["instances"]
    commit = f" ({_lags(r['commit_lag_ms'])})" if r.get("commit_lag_ms") else ""
    caught = "not in the window" if r["caught_up_after_s"] is None else f"{r['caught_up_after_s']:.1f} s"
    return (
        f"| {r['database']} | {r['instances']} | {r['rate']:g} → {achieved} | {'yes' if r['writer_kept'] else 'NO'} "
        f"| {_cell(r['database_cpu_ms_per_commit'], '.2f')} ms | {_cell(r['database_cpu_cores'], '.0%')} "
        f"| {_lags(lag)} ms{commit} "
        f"| {_cell(lag['worst_instance_p99'], '.0f')} ms | {caught} | {checks} | {cores:.0%}; {each:.1%} "
        f"| {_cell(r.get('writer_and_probes_cpu_cores'), '.0%')} | {r['machine_busy']:.0%} "
        f"({_cell(r.get('bench_share'), '.0%')}) "
        f"| {'yes' if r['valid'] else 'NO'} |"
    )


def markdown(runs: Sequence[dict[str, Any]]) -> str:
    lines = [HEAD, "|" + "---|" * 14]
    results = [r for run in runs for r in run["results"]]
    lines += [row(r) for r in results]
    lines += [
        "",
        "- Database CPU per commit: its server processes' CPU seconds over the window (the writer's start until every"
        " probe has every write), over the writer's commits. Lag: from a write being sent (the stamp in the order;"
        " its commit follows) to an instance's probe having it; in brackets, on PostgreSQL, from the commit itself"
        " (`committed_at`). Writer and probes: the writer's process and the bench's own (one probe per instance);"
        " in brackets after the machine's busy share, the share of it this bench started (database, instances,"
        " writer, probes). A case is not valid when the machine was 90 % busy or more.",
    ]
    for run in runs:
        lines.append(f"- {run['database']}: `{run['command']}` ({run['date']}, {run['machine']})")
    for line in per_follower(results):
        lines.append(
            f"- {line['database']} at {line['rate']:g} writes/s: database CPU per commit ≈ {line['base_ms']:.2f} ms"
            f" + {line['per_follower_ms']:.3f} ms × K (least squares over K)"
        )
    return "\n".join(lines) + "\n"


def merge_runs(earlier: Sequence[dict[str, Any]], run: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier runs of the other databases, then ``run``."""
    return [r for r in earlier if r["database"] != run["database"]] + [run]


def write_instances_report(run: dict[str, Any], out: Path) -> str:
    """Merge ``run`` into ``out``/instances.json and write instances.md from it; the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "instances.json"
    earlier = json.loads(path.read_text())["runs"] if path.is_file() else []
    runs = merge_runs(earlier, run)
    path.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    text = markdown(runs)
    (out / "instances.md").write_text(text)
    return text


def is_valid(machine_busy: float) -> bool:
    return machine_busy < SATURATED
