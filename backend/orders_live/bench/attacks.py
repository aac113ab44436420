"""``orders-live bench --attack NAME[,NAME…]``: hostile clients against a live service, with
the figures issue 19's "done when" names.

Each scenario starts the service as its own process on a fresh database (``Scratch``), runs
its hostile client, and returns its figures and, per bound, whether it was met
(``done_when``). The results go to ``<out>/<tag>-<database>.json`` and a text table
``<out>/<tag>-<database>.md``; the table is printed too.

- ``subscribe-flood`` (``bench/subscribe_flood.py``): snapshots asked for by a connection that
  never reads: RSS, and REST latency meanwhile.
- ``forged-polls`` (``bench/forged_polls.py``): polls from forged positions on a 50,000-change
  log, and another client's catch-up meanwhile.
- ``refused-sessions``, ``bad-tokens`` (``bench/refused_sessions.py``): Engine.IO sessions whose
  connect is refused, and a burst of wrong tokens on one socket.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orders_live.bench.attack_target import Scratch
from orders_live.bench.forged_polls import forged_polls
from orders_live.bench.refused_sessions import bad_tokens, refused_sessions
from orders_live.bench.subscribe_flood import subscribe_flood

Scenario = Callable[[Scratch, Path], Awaitable[dict[str, Any]]]
ATTACKS: dict[str, Scenario] = {
    "subscribe-flood": subscribe_flood,
    "forged-polls": forged_polls,
    "refused-sessions": refused_sessions,
    "bad-tokens": bad_tokens,
}


def attack_names(spec: str) -> list[str]:
    """``all``, or names separated by commas, each one of ``ATTACKS``."""
    if spec.strip() == "all":
        return list(ATTACKS)
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in ATTACKS]
    if unknown or not names:
        raise ValueError(f"unknown attack {', '.join(unknown) or repr(spec)}: choose from all, {', '.join(ATTACKS)}")
    return names


def figures(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A result's figures as (name, value) rows for the text table."""
    name = result["scenario"]
    if name == "subscribe-flood":
        latency = result["rest_latency_ms"]
        return [
            ("subscribes sent (never read)", str(result["subscribes_sent"])),
            ("RSS start / peak / 3 s after close", _mb(result, "rss_start_mb", "rss_peak_mb", "rss_after_close_mb")),
            ("RSS growth", f"{result['rss_growth_mb']} MB"),
            (
                "REST p50 / p99 / max",
                f"{latency['p50']} / {latency['p99']} / {latency['max']} ms ({result['rest_calls']} calls, "
                f"{len(result['rest_failures'])} failed)",
            ),
            (
                "REST max before / during / after the flood",
                " / ".join(_or_dash(phase["max"]) for phase in result["rest_latency_ms_by_phase"].values()) + " ms",
            ),
        ]
    if name == "forged-polls":
        polls = " / ".join(f"{p['seconds']} s {p['status']} {p['outcome']}" for p in result["forged_polls"])
        contested, alone = result["catch_up_contested"], result["catch_up_alone"]
        return [
            (f"forged polls (since={result['forged_since']})", polls),
            ("other client's SSE catch-up, meanwhile", f"{contested['seconds']} s ({contested['outcome']})"),
            ("the same catch-up alone", f"{alone['seconds']} s ({alone['outcome']})"),
        ]
    if name == "refused-sessions":
        answers = f"{result['refused']} / {result['accepted']} / {result['closed_unanswered']} of {result['sessions']}"
        rows = [("sessions refused / accepted / closed unanswered", answers)]
        rows += [
            (
                f"still open after {mark['after_s']:g} s",
                f"{mark['still_open']} ({mark['service_open_files']} open files)",
            )
            for mark in result["marks"]
        ]
        return [*rows, ("service open files before", str(result["service_open_files_before"]))]
    if name == "bad-tokens":
        closed = f"yes, after {result['closed_after_s']} s" if result["socket_closed_by_server"] else "no"
        return [
            ("wrong-token connects sent", f"{result['attempts_sent']} in {result['burst_s']} s"),
            ("answered", str(result["answered"])),
            ("socket closed by the server", closed),
            ("WARNING lines logged", str(result["warning_lines"])),
        ]
    raise ValueError(f"unknown scenario {name!r}")


def _or_dash(value: float | None) -> str:
    return "–" if value is None else f"{value}"


def _mb(result: dict[str, Any], *keys: str) -> str:
    return " / ".join(f"{result[key]}" for key in keys) + " MB"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: scenario, database, figure, value; then each bound and whether it was met."""
    lines = ["| scenario | database | figure | value |", "|---|---|---|---|"]
    for result in results:
        for figure, value in figures(result):
            lines.append(f"| {result['scenario']} | {result['database']} | {figure} | {value} |")
        for bound, met in result["done_when"].items():
            lines.append(f"| {result['scenario']} | {result['database']} | done when: {bound} | {_met(met)} |")
    return "\n".join(lines) + "\n"


def _met(met: bool) -> str:
    return "met" if met else "NOT met"


def write_results(results: list[dict[str, Any]], out: Path, tag: str, kind: str, command: str) -> Path:
    """``<out>/<tag>-<kind>.json`` (with when, where and how) and ``.md``; returns the JSON's path."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stem = f"{tag}-{kind}" if tag else kind
    path = out / f"{stem}.json"
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    (out / f"{stem}.md").write_text(f"Command: `{command}`\n\n" + table(results))
    return path


async def run_attacks(names: list[str], scratch: Scratch, folder: Path) -> list[dict[str, Any]]:
    """Each scenario in turn, each on its own service and database; ``folder`` keeps the logs."""
    results = []
    for name in names:
        print(f"{scratch.kind}: {name} …", flush=True)
        load = os.getloadavg()[0]  # the machine is shared: how busy it was when the scenario began
        result = {**await ATTACKS[name](scratch, folder / name), "load_average_1m_at_start": round(load, 2)}
        results.append(result)
        print(table([result]), flush=True)
    return results
