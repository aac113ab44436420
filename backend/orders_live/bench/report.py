"""The benchmark's report: a Markdown table, the highest stable rates, a latency plot, results.json."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from orders_live.bench.scale_report import scale_lines


def label(result: dict[str, Any]) -> str:
    """The case's name: its transport, and how it was reached ("socketio via nginx, 2 instances")."""
    return str(result.get("case") or result["transport"])


def _number(value: float | None, form: str) -> str:
    """``value`` formatted, or "–" when there is none (no deliveries: no latency, no cost per delivery)."""
    return "–" if value is None or math.isnan(value) else format(value, form)


def _foreign(result: dict[str, Any]) -> str:
    """Changes of another customer's orders: checked for scoped clients only (a viewer's are all its)."""
    return str(result["foreign"]) if result.get("scope") in ("customer", "idle") else "–"


def markdown(results: list[dict[str, Any]]) -> str:
    """One row per case; through nginx, two more columns (nginx's CPU, each instance's share of
    the deliveries), and the service's CPU and RSS are the sum of the instances. With customer
    scopes (``--customers``), three more: changes of another customer's orders (``foreign``), the
    no-delivery baseline's CPU, and the CPU per delivery above it."""
    balanced = any("balancer_cpu_per_core" in r for r in results)
    scoped = any("scope" in r for r in results)
    head = (
        "| transport | clients | writes/s | deliveries/s | p50 ms | p95 ms | p99 ms | max ms | lost | dup | "
        "out of order | server CPU/core | µs/delivery | mean batch | peak RSS MB | polls/s | empty polls | valid |"
    )
    if balanced:
        head = head.replace("| server CPU/core |", "| server CPU/core (sum of instances) |")
        head = head.replace("| peak RSS MB |", "| peak RSS MB (sum) |") + " nginx CPU/core | deliveries per instance |"
    if scoped:
        head += " foreign | baseline CPU/core | marginal µs/delivery |"
    lines = [head, "|" + "---|" * (18 + 2 * balanced + 3 * scoped)]
    for r in results:
        lat = {key: _number(value, ".1f") for key, value in r["latency_ms"].items()}
        polls = f"{r['poll_requests_per_s']:.1f}" if r["poll_requests_per_s"] else "–"
        empty = f"{r['poll_empty_share']:.0%}" if r["poll_empty_share"] is not None else "–"
        batch = f"{r['mean_batch']:.1f}" if r.get("mean_batch") else "–"
        cost = _number(r["server_us_per_delivery"], ".1f")
        row = (
            f"| {label(r)} | {r['clients']} | {r['writes_per_s']:g} | {r['deliveries_per_s']:.0f} | "
            f"{lat['p50']} | {lat['p95']} | {lat['p99']} | {lat['max']} | {r['lost']} | "
            f"{r['duplicated']} | {r['out_of_order']} | {r['server_cpu_per_core']:.0%} | "
            f"{cost} | {batch} | {r['server_peak_rss_mb']:.0f} | {polls} | {empty} | "
            f"{'yes' if r['valid'] else 'NO'} |"
        )
        if balanced:
            shares = " / ".join(f"{share:.0%}" for share in r.get("instance_delivery_shares", []))
            front = r.get("balancer_cpu_per_core")
            row += f" {front:.0%} |" if front is not None else " – |"
            row += f" {shares or '–'} |"
        if scoped:
            baseline = r.get("baseline_cpu_per_core")
            row += f" {_foreign(r)} |"
            row += f" {_number(baseline, '.0%')} | {_number(r.get('server_marginal_us_per_delivery'), '.1f')} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def scope_comparison(results: list[dict[str, Any]]) -> str:
    """The runs with customer scopes, the figures that compare them: per run, deliveries/s,
    latency, the service's CPU per delivery raw and above the no-delivery baseline, the time its
    fan-out took per delivery (its own histogram), what went wrong (lost, duplicated, out of
    order, foreign) and peak RSS."""
    rows = [r for r in results if "scope" in r]
    if not rows:
        return ""
    lines = [
        "| run | clients | writes/s | deliveries/s | p50 ms | p99 ms | server CPU/core | µs/delivery | "
        "baseline CPU/core | marginal µs/delivery | fan-out µs/delivery | lost | dup | out of order | foreign | "
        "peak RSS MB | valid |",
        "|" + "---|" * 17,
    ]
    for r in rows:
        lines.append(
            f"| {label(r)} | {r['clients']} | {r['writes_per_s']:g} | {r['deliveries_per_s']:.0f} | "
            f"{_number(r['latency_ms']['p50'], '.1f')} | {_number(r['latency_ms']['p99'], '.1f')} | "
            f"{r['server_cpu_per_core']:.1%} | {_number(r['server_us_per_delivery'], '.1f')} | "
            f"{_number(r.get('baseline_cpu_per_core'), '.1%')} | "
            f"{_number(r.get('server_marginal_us_per_delivery'), '.1f')} | "
            f"{_number(r.get('fanout_us_per_delivery'), '.1f')} | {r['lost']} | {r['duplicated']} | "
            f"{r['out_of_order']} | {_foreign(r)} | {r['server_peak_rss_mb']:.0f} | {'yes' if r['valid'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def stable_rates(results: list[dict[str, Any]]) -> str:
    """Per transport and client count: the highest write rate that kept up (nothing lost
    or late at the end of the settle window) with p99 <= 250 ms, in a valid run."""
    lines = []
    for name, clients in sorted({(label(r), r["clients"]) for r in results}):
        rows = [r for r in results if (label(r), r["clients"]) == (name, clients)]
        if rows[0]["transport"] == "polling" or rows[0].get("scope") == "idle":  # nothing to keep up with
            continue
        good = [r["writes_per_s"] for r in rows if r["valid"] and r["lost"] == 0 and r["latency_ms"]["p99"] <= 250]
        best = f"{max(good):g} writes/s" if good else "none of the rates tried"
        tried = ", ".join(f"{r['writes_per_s']:g}" for r in rows)
        lines.append(f"- {name} × {clients} clients: highest stable rate {best} (tried {tried})")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name in sorted({label(r) for r in results if r.get("scope") != "idle"}):  # the baseline has no latency
        rows = sorted((r for r in results if label(r) == name), key=lambda r: r["writes_per_s"])
        rates = [r["writes_per_s"] for r in rows]
        for key, style in (("p50", ":"), ("p99", "-")):
            axis.plot(rates, [r["latency_ms"][key] for r in rows], style, marker="o", label=f"{name} {key}")
    axis.set_xlabel("writes per second")
    axis.set_ylabel("write → client latency, ms")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title("orders-live: latency percentiles against write rate")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    plot_cpu(results, path.with_name("cpu.png"))
    return True


def plot_cpu(results: list[dict[str, Any]], path: Path) -> None:
    """The service's CPU per delivery against the write rate, per transport (matplotlib loaded)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for name in sorted({label(r) for r in results if r["transport"] != "polling" and r.get("scope") != "idle"}):
        rows = sorted((r for r in results if label(r) == name), key=lambda r: r["writes_per_s"])
        clients = rows[0]["clients"] if rows else 0
        axis.plot(
            [r["writes_per_s"] for r in rows],
            [r["server_us_per_delivery"] for r in rows],
            marker="o",
            label=f"{name} × {clients} clients",
        )
    axis.set_xlabel("writes per second")
    axis.set_ylabel("server CPU per delivery, µs")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    axis.set_title("orders-live: CPU per delivery falls as the rate rises (one batch per read)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _strict(value: Any) -> Any:
    """``value`` with NaN (no latency, no cost per delivery: a run without deliveries) as null
    and infinity (a lag past the histogram's last bucket) as "+Inf", so that results.json is
    JSON that every reader takes."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return "+Inf"
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    return value


def write_report(
    out: Path,
    results: list[dict[str, Any]],
    processes: int | None,
    sample: int,
    database_url: str | None,
    settle: float,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": database_url.split(":", 1)[0] if database_url else "embedded nx-27017",
        "client_processes": processes,
        "sampled_clients": sample,
        "settle_s": settle,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "results.json").write_text(json.dumps(_strict({"meta": meta, "results": results}), indent=2))
    table = markdown(results) + "\n" + stable_rates(results) + "\n"
    comparison = scope_comparison(results)
    if comparison:
        table += "\n" + comparison
    scale = scale_lines(results)
    if scale:
        table += "\nAt scale (event-loop lag: bucket upper bounds of the service's own histogram):\n\n" + scale
    (out / "results.md").write_text(table)
    plotted = plot(results, out / "latency.png")
    print(table)
    pngs = f", {out / 'latency.png'}, {out / 'cpu.png'}" if plotted else ""
    print(f"written: {out / 'results.json'}, {out / 'results.md'}" + pngs)
