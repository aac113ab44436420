"""``orders-live bench``: the run its options ask for (``bench_options``), and the databases it
sets up before it runs
``orders_live.bench`` (an embedded server, preloaded tables, the writer's address): the bench
package itself reaches the service only over the wire."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from orders_live.cli.bench_options import EMBEDDED_DATABASES, add_bench_parser
from orders_live.cli.bench_write_cost import write_cost
from orders_live.cli.scratch_databases import scratch_server

__all__ = ["EMBEDDED_DATABASES", "add_bench_parser", "run_bench_command"]


def run_bench_command(args: argparse.Namespace) -> None:
    if args.dashboard:
        _dashboard(args)
        return
    if args.attack:
        _attacks(args)
        return
    if args.write_cost:
        write_cost(args.database_url, Path(args.out))
        return
    if args.instances:
        _instances(args)
        return
    if args.orders:
        sizes = [int(size.replace("_", "")) for size in args.orders.split(",")]
        asyncio.run(_bench_tables(sizes, args.database_url, args.database, Path(args.out)))
        return
    if args.customers is not None and args.customers < 1:
        raise SystemExit("--customers: at least 1")
    if (args.unscoped or args.unscoped_orders or not args.baseline) and args.customers is None:
        raise SystemExit("--unscoped, --unscoped-orders and --no-baseline go with --customers N")
    if args.unscoped_orders and (args.unscoped or args.sse_clients or args.poll_clients):
        raise SystemExit("--unscoped-orders is a Socket.IO run of its own: give --sse-clients 0 --poll-clients 0")
    try:
        from orders_live.bench.runner import Bench
        from orders_live.bench.scopes import Scopes
        from orders_live.bench.sweep import run_bench
    except ImportError as exc:
        raise SystemExit(f"the benchmark needs its extras: pip install -e 'backend[bench]' ({exc})") from None
    cases = _cases(args)
    if (args.external_writer or args.through_nginx) and not args.database_url:
        asyncio.run(_bench_with_embedded(cases, args))
        return
    scopes = Scopes(args.customers) if args.customers is not None else None
    bench = Bench(
        args.processes, args.sample, args.database_url, args.external_writer, args.through_nginx, None, scopes
    )
    asyncio.run(run_bench(cases, Path(args.out), bench, _workers(args.workers), args.sigterm))


def _cases(args: argparse.Namespace) -> list[Any]:
    """Socket.IO at each rate, SSE at the lowest and 50, polling at the lowest. With
    ``--customers``, the clients hold customer (or, ``--unscoped``, viewer) tokens, and each
    push case follows its no-delivery baseline (same transport, clients and rate)."""
    from orders_live.bench.runner import Case
    from orders_live.bench.scopes import Mode

    scoped = args.customers is not None
    mode: Mode | None = None
    if scoped:
        mode = "viewer" if args.unscoped else "order" if args.unscoped_orders else "customer"

    def push(transport: str, clients: int, rate: float) -> list[Case]:
        baseline = [Case(transport, clients, rate, args.duration, scope="idle")] if scoped and args.baseline else []
        return [*baseline, Case(transport, clients, rate, args.duration, scope=mode)]

    rates = [float(rate) for rate in (args.rates or "5,10,20,50,70,100").split(",")]
    counts = _counts(args.clients, "--clients")
    cases = [case for clients in counts for rate in rates for case in push("socketio", clients, rate)]
    # The comparison with SSE and polling by default; at scale (and one order each), Socket.IO alone.
    small = max(counts) <= 1000 and not args.unscoped_orders
    sse = args.sse_clients if args.sse_clients is not None else 200 if small else 0
    poll = args.poll_clients if args.poll_clients is not None else 100 if small else 0
    if sse:
        cases += [case for rate in sorted({min(rates), 50.0}) for case in push("sse", sse, rate)]
    if poll:
        cases.append(Case("polling", poll, min(rates), args.duration, args.poll_interval, scope=mode))
    return cases


def _counts(text: str, option: str) -> list[int]:
    """``N[,N…]``, each at least 1 (``_`` allowed: 10_000)."""
    try:
        counts = [int(part.replace("_", "")) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"{option}: whole numbers separated by commas, not {text!r}") from None
    if min(counts) < 1:
        raise SystemExit(f"{option}: at least 1")
    return counts


def _workers(text: str | None) -> list[int] | None:
    """``--workers``: worker counts, ``auto`` being one per core; None when not given."""
    return None if text is None else _counts(text.replace("auto", str(os.cpu_count() or 1)), "--workers")


async def _bench_with_embedded(cases: list[Any], args: argparse.Namespace) -> None:
    """The external writer needs the database's address, and two instances one database to
    share: an embedded one started here."""
    from orders_live.bench.runner import Bench
    from orders_live.bench.scopes import Scopes
    from orders_live.bench.sweep import run_bench

    folder = Path(tempfile.mkdtemp(prefix="orders-live-bench-"))
    os.chmod(folder, 0o755)  # an embedded PostgreSQL runs as another user when we are root
    server: Any
    if args.database == "postgres":
        from orders_live.sources.postgres.embedded import EmbeddedPostgres

        server = EmbeddedPostgres(folder)
    else:
        from orders_live.sources.mongo.embedded import EmbeddedMongo

        server = EmbeddedMongo(folder / "nx")
    url = await server.start()
    pid = server.process.pid if server.process is not None else None  # its CPU is reported as the database's
    try:
        scopes = Scopes(args.customers) if args.customers is not None else None
        bench = Bench(args.processes, args.sample, url, args.external_writer, args.through_nginx, pid, scopes)
        await run_bench(cases, Path(args.out), bench, _workers(args.workers), args.sigterm)
    finally:
        await server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _bench_tables(sizes: list[int], url: str | None, embedded: str, out: Path) -> None:
    """One preloaded database per size and an empty one, on the given server or an embedded one."""
    from orders_live.bench.bulk import insert_orders
    from orders_live.bench.table_size import TableRun, measure_table, write_table_report

    folder = Path(tempfile.mkdtemp(prefix="orders-live-bench-"))
    os.chmod(folder, 0o755)  # an embedded PostgreSQL runs as another user when we are root
    runs: list[TableRun] = []
    server: Any = None
    try:
        kind, fresh, server = await scratch_server(url, embedded, folder)
        empty = await fresh("bench_empty")
        for size in sizes:
            full = await fresh(f"bench_{size}")
            print(f"{kind}: {size:,} orders…", flush=True)
            runs.append(await measure_table(kind, full, empty, size, insert_orders))
    finally:
        if server is not None:
            await server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    command = "orders-live bench --orders " + ",".join(str(s) for s in sizes)
    command += f" --database {kind}" if kind != "mongodb" else " --database-url …"
    print(write_table_report(runs, out, command))
    print(f"written: {out / 'table-size.md'}")


def _instances(args: argparse.Namespace) -> None:
    from orders_live.bench.instance_figures import parse_counts, parse_rates

    try:
        counts, rates = parse_counts(args.instances), parse_rates(args.rates or "100,500")
    except ValueError as exc:
        raise SystemExit(f"--instances/--rates: {exc}") from None
    command = f"orders-live bench --instances {args.instances} --rates {args.rates or '100,500'}"
    command += f" --duration {args.duration:g}"
    asyncio.run(_bench_instances(counts, rates, args, command))


async def _bench_instances(counts: list[int], rates: list[float], args: argparse.Namespace, command: str) -> None:
    """K instances on the given database, or on an embedded one started here (whose processes'
    CPU is then the database's: none is measured for a URL's)."""
    from orders_live.bench.instances import run_instances

    folder = Path(tempfile.mkdtemp(prefix="orders-live-bench-"))
    os.chmod(folder, 0o755)  # an embedded PostgreSQL runs as another user when we are root
    url, kind = args.database_url, args.database
    server: Any = None
    if url:
        kind = "postgres" if url.startswith("postgres") else "mongodb"
    try:
        if url is None and kind == "postgres":
            from orders_live.sources.postgres.embedded import EmbeddedPostgres

            server = EmbeddedPostgres(folder, server_settings={"max_connections": "200"})  # 16 followers, a writer
        elif url is None:
            from orders_live.sources.mongo.embedded import EmbeddedMongo

            server = EmbeddedMongo(folder / "nx")
        if server is not None:
            url = await server.start()
        pid = server.process.pid if server is not None and server.process is not None else None
        command += f" --database {kind}" if server is not None else " --database-url …"
        await run_instances(kind, url, pid, counts, rates, args.duration, Path(args.out), command)
    finally:
        if server is not None:
            await server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _dashboard(args: argparse.Namespace) -> None:
    from orders_live.bench.dashboard import Plan
    from orders_live.bench.dashboard_page import MissingBrowser, check_prerequisites

    default = Path(__file__).resolve().parents[3] / "frontend" / "dist"
    frontend = Path(os.environ.get("ORDERS_LIVE_FRONTEND_DIR") or default)
    try:
        check_prerequisites(frontend)
    except MissingBrowser as exc:
        raise SystemExit(f"--dashboard: {exc}") from None
    rates = [float(rate) for rate in (args.rates or "5,50").split(",")]
    plan = Plan(_counts(args.dashboard_rows, "--dashboard-rows"), rates, args.dashboard_window, args.dashboard_burst)
    asyncio.run(_bench_dashboard(plan, frontend, args))


async def _bench_dashboard(plan: Any, frontend: Path, args: argparse.Namespace) -> None:
    """The dashboard's cases on the given server, or an embedded one; each size on a fresh database."""
    from orders_live.bench.bulk import insert_orders
    from orders_live.bench.dashboard import run_dashboard
    from orders_live.bench.dashboard_stats import markdown, write_report

    folder = Path(tempfile.mkdtemp(prefix="orders-live-dashboard-"))
    os.chmod(folder, 0o755)  # an embedded PostgreSQL runs as another user when we are root
    server: Any = None
    try:
        kind, fresh, server = await scratch_server(args.database_url, args.database, folder)
        cases = await run_dashboard(fresh, insert_orders, frontend, plan)
    finally:
        if server is not None:
            await server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    command = f"orders-live bench --dashboard --dashboard-rows {','.join(str(s) for s in plan.sizes)}"
    command += f" --rates {','.join(f'{r:g}' for r in plan.rates)} --dashboard-window {plan.window_s:g}"
    command += f" --dashboard-burst {plan.burst}"
    command += f" --database {kind}" if args.database_url is None else " --database-url …"
    command += f" --tag {args.tag}" if args.tag else ""
    path = write_report(cases, Path(args.out), command, f"dashboard-{args.tag}" if args.tag else "dashboard")
    print(markdown(cases))
    print(f"written: {path}, {path.with_suffix('.md')}")


def _attacks(args: argparse.Namespace) -> None:
    from orders_live.bench.attacks import attack_names

    try:
        names = attack_names(args.attack)
    except ValueError as exc:
        raise SystemExit(f"--attack: {exc}") from None
    asyncio.run(_run_attacks(names, args.database_url, args.database, Path(args.out), args.tag))


async def _run_attacks(names: list[str], url: str | None, embedded: str, out: Path, tag: str) -> None:
    """The scenarios on the given server, or an embedded one; each gets a database of its own."""
    from orders_live.bench.attack_target import Scratch
    from orders_live.bench.attacks import ATTACKS, run_attacks, table, write_results
    from orders_live.bench.bulk import insert_orders

    folder = Path(tempfile.mkdtemp(prefix="orders-live-attack-"))
    os.chmod(folder, 0o755)  # an embedded PostgreSQL runs as another user when we are root
    server: Any = None
    try:
        kind, fresh, server = await scratch_server(url, embedded, folder)
        results = await run_attacks(names, Scratch(kind, fresh, insert_orders), folder)
    finally:
        if server is not None:
            await server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    command = f"orders-live bench --attack {'all' if names == list(ATTACKS) else ','.join(names)}"
    command += f" --database {kind}" if url is None else " --database-url …"
    command += f" --tag {tag}" if tag else ""
    path = write_results(results, out, tag, kind, command)
    print(table(results))
    print(f"written: {path}, {path.with_suffix('.md')}")
