"""The bench report's figures at scale, one row per case: connect time, the service's RSS per
connection, its event-loop lag (bucket upper bounds of its own histogram), the writes whose
slowest delivery passed 250 ms and the slowest ones with their time in the window (a periodic
stall shows as slow writes at regular times), CPU per service process (workers), and the
SIGTERM measurement when one was made."""

from __future__ import annotations

import math
from typing import Any


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return "> 5000" if math.isinf(seconds) else f"≤ {seconds * 1000:g}"


def _lag(result: dict[str, Any]) -> str:
    lag = result.get("event_loop_lag")
    if lag is None:
        return "– | –"  # the service does not export the histogram
    return f"{_ms(lag['p99_s'])} | {_ms(lag['max_s'])}"


def _slowest(result: dict[str, Any]) -> str:
    writes = result.get("per_write") or {}
    return ", ".join(f"{w['max_ms']:.0f} ms at {w['at_s']:.1f} s" for w in writes.get("slowest", [])) or "–"


def _shutdown(result: dict[str, Any]) -> str:
    shutdown = result.get("shutdown")
    if shutdown is None:
        return "–"
    took = "not within 60 s (killed)" if shutdown["exit_s"] is None else f"{shutdown['exit_s']:.1f} s"
    return (
        f"exit {took}; told to reconnect {shutdown['told_to_reconnect']}, TCP close only "
        f"{shutdown['closed_before_exit']}, told to disconnect {shutdown['told_to_disconnect']}, "
        f"dropped {shutdown['dropped']}"
    )


def scale_lines(results: list[dict[str, Any]]) -> str:
    """The table (Markdown) of the cases that have the scale figures."""
    rows = [r for r in results if "connect_s" in r]
    if not rows:
        return ""
    lines = [
        "| case | clients | workers | connect s | not connected (retries) | RSS/connection KB | loop lag p99 ms | "
        "loop lag max ms | writes | writes > 250 ms | slowest writes (time in window) | deliveries/s | "
        "CPU/core per service process | SIGTERM |",
        "|" + "---|" * 14,
    ]
    for r in rows:
        writes = r.get("per_write") or {}
        cpu = " / ".join(f"{share:.0%}" for share in r.get("service_cpu_per_process", []))
        connect = "–" if r["connect_s"] is None else f"{r['connect_s']:.1f}"
        lines.append(
            f"| {r.get('case') or r['transport']} | {r['clients']} | {r.get('workers', 1)} | {connect} | "
            f"{r.get('connect_failures', 0)} ({r.get('connect_retries', 0)}) | "
            f"{r['rss_per_connection_kb']:.1f} | {_lag(r)} | {writes.get('writes', 0)} | "
            f"{writes.get('over_250ms', 0)} | {_slowest(r)} | {r['deliveries_per_s']:.0f} | {cpu or '–'} | "
            f"{_shutdown(r)} |"
        )
    return "\n".join(lines) + "\n"
