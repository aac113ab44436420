"""The ``orders-live`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from orders_live.client.live_orders import Refused
from orders_live.client.rest import ApiRefused, OrdersClient
from orders_live.client.simulator import Simulator
from orders_live.client.watch import Watcher
from orders_live.domain.order import STATUSES
from orders_live.log_format import configure_logging
from orders_live.runtime.supervisor import Supervisor
from orders_live.service import Service
from orders_live.settings import Settings

EMBEDDED_DATABASES = ("nx-27017", "postgres")

DEFAULT_URL = "http://127.0.0.1:8080"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orders-live", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def server_command(name: str, text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        command.add_argument("--port", type=int, help="port to listen on (default 8080)")
        command.add_argument(
            "--database-url",
            "--mongo-url",
            dest="database_url",
            help="use this database (mongodb://, postgresql://) instead of an embedded one",
        )
        command.add_argument(
            "--database",
            choices=EMBEDDED_DATABASES,
            help="which database to embed when there is no URL (default nx-27017)",
        )
        command.add_argument("--data-dir", help="folder of the embedded database (default ./data)")
        return command

    server_command("serve", "run the service")
    demo = server_command("demo", "run the service with simulated orders traffic")
    demo.add_argument("--rate", type=float, default=2.0, help="simulated writes per second (default 2)")

    def client_command(name: str, text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
        command.add_argument(
            "--token", default=os.environ.get("ORDERS_LIVE_TOKEN"), help="access token (default $ORDERS_LIVE_TOKEN)"
        )
        return command

    watch = client_command("watch", "print each change as it happens")
    watch.add_argument(
        "--also", action="append", default=[], metavar="URL", help="another instance to fail over to (repeatable)"
    )
    which = watch.add_mutually_exclusive_group()
    which.add_argument("--status", choices=STATUSES)
    which.add_argument("--id", type=int)
    watch.add_argument("--json", action="store_true", help="one JSON object per line")
    watch.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="start from the newest N orders only (1 to 10000); changes still cover all",
    )

    create = client_command("create", "create an order")
    create.add_argument("customer_name")
    create.add_argument("product_name")
    create.add_argument("--status", choices=STATUSES)

    update = client_command("update", "change an order")
    update.add_argument("id", type=int)
    update.add_argument("--customer-name")
    update.add_argument("--product-name")
    update.add_argument("--status", choices=STATUSES)
    update.add_argument("--if-match", type=int, metavar="VERSION", help="only if the order is at this version")

    delete = client_command("delete", "delete an order")
    delete.add_argument("id", type=int)

    simulate = client_command("simulate", "drive a realistic order life cycle against the service")
    simulate.add_argument("--rate", type=float, default=2.0, help="writes per second (default 2)")
    simulate.add_argument("--count", type=int, help="stop after this many writes")
    simulate.add_argument("--seed", type=int)
    bench = commands.add_parser(
        "bench",
        help="measure push against polling",
        description=(
            "Start the service, clients in separate processes and a writer; report latency, losses, CPU and memory."
        ),
    )
    bench.add_argument("--clients", type=int, default=1000, help="Socket.IO clients (default 1000)")
    bench.add_argument(
        "--rates", default="5,10,20,50,70,100", help="writes per second to sweep (default 5,10,20,50,70,100)"
    )
    bench.add_argument("--duration", type=float, default=10.0, help="seconds of writing per case (default 10)")
    bench.add_argument("--sse-clients", type=int, default=200, help="SSE clients, at the lowest and 50 writes/s")
    bench.add_argument("--poll-clients", type=int, default=100, help="polling clients, at the lowest rate")
    bench.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)")
    bench.add_argument("--processes", type=int, default=2, help="client processes (default 2)")
    bench.add_argument("--sample", type=int, default=100, help="clients that parse and time every change")
    bench.add_argument(
        "--database-url",
        "--mongo-url",
        dest="database_url",
        help="use this database (mongodb://, postgresql://) instead of the embedded nx-27017",
    )
    bench.add_argument(
        "--write-cost",
        action="store_true",
        help="instead: what the change log's triggers cost each write (PostgreSQL; a scratch schema)",
    )
    bench.add_argument(
        "--external-writer",
        action="store_true",
        help="write straight to the database from another process (starts an embedded nx-27017 without a URL)",
    )
    bench.add_argument(
        "--orders",
        metavar="N[,N…]",
        help="instead: preload N orders (each size in turn); measure start-up, RSS per order, snapshots, a burst",
    )
    bench.add_argument(
        "--database",
        choices=EMBEDDED_DATABASES,
        default="nx-27017",
        help="with --orders or --external-writer and no --database-url: the embedded database (default nx-27017)",
    )
    bench.add_argument("--out", default="docs/performance", help="folder for results.json/.md and latency.png")
    return parser


def _bench(args: argparse.Namespace) -> None:
    if args.write_cost:
        _write_cost(args.database_url, Path(args.out))
        return
    if args.orders:
        sizes = [int(size.replace("_", "")) for size in args.orders.split(",")]
        asyncio.run(_bench_tables(sizes, args.database_url, args.database, Path(args.out)))
        return
    try:
        from orders_live.bench.runner import Case, run_bench
    except ImportError as exc:
        raise SystemExit(f"the benchmark needs its extras: pip install -e 'backend[bench]' ({exc})") from None
    rates = [float(rate) for rate in args.rates.split(",")]
    cases = [Case("socketio", args.clients, rate, args.duration) for rate in rates]
    if args.sse_clients:
        cases += [Case("sse", args.sse_clients, rate, args.duration) for rate in sorted({min(rates), 50.0})]
    if args.poll_clients:
        cases.append(Case("polling", args.poll_clients, min(rates), args.duration, args.poll_interval))
    if args.external_writer and not args.database_url:
        asyncio.run(_bench_with_embedded(cases, args))
        return
    asyncio.run(run_bench(cases, Path(args.out), args.processes, args.sample, args.database_url, args.external_writer))


async def _bench_with_embedded(cases: list[Any], args: argparse.Namespace) -> None:
    """The external writer needs the database's address: an embedded one started here."""
    from orders_live.bench.runner import run_bench

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
    try:
        await run_bench(cases, Path(args.out), args.processes, args.sample, url, external=True)
    finally:
        await server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _bench_tables(sizes: list[int], url: str | None, embedded: str, out: Path) -> None:
    """One preloaded database per size and an empty one, on the given server or an embedded one."""
    from orders_live.bench.table_size import TableRun, measure_table, write_table_report
    from orders_live.sources.bulk import insert_orders

    folder = Path(tempfile.mkdtemp(prefix="orders-live-bench-"))
    os.chmod(folder, 0o755)  # an embedded PostgreSQL runs as another user when we are root
    runs: list[TableRun] = []
    kind = "postgres" if (url or "").startswith("postgres") or (not url and embedded == "postgres") else "nx-27017"
    if url and kind == "nx-27017" and "127.0.0.1" not in url and "localhost" not in url:
        kind = "mongodb"
    server: Any = None
    try:
        if kind == "postgres":
            from orders_live.sources.postgres.embedded import EmbeddedPostgres, create_database

            if url is None:
                server = EmbeddedPostgres(folder, database="postgres")
                await server.start()
            admin = url or server.url("postgres")
            base = admin.rsplit("/", 1)[0]
            names = ["bench_empty", *(f"bench_{size}_{os.getpid()}" for size in sizes)]
            for name in names:
                await create_database(admin, name)
            urls = [f"{base}/{name}" for name in names]
        else:
            if url is None:
                from orders_live.sources.mongo.embedded import EmbeddedMongo

                server = EmbeddedMongo(folder / "nx")
                await server.start()
                url = server.url
            base, _, query = url.partition("?")
            root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
            suffix = f"?{query}" if query else ""
            urls = [f"{root}/bench_empty_{os.getpid()}{suffix}"]
            urls += [f"{root}/bench_{size}_{os.getpid()}{suffix}" for size in sizes]
        for size, full in zip(sizes, urls[1:], strict=True):
            print(f"{kind}: {size:,} orders…", flush=True)
            runs.append(await measure_table(kind, full, urls[0], size, insert_orders))
    finally:
        if server is not None:
            await server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    command = "orders-live bench --orders " + ",".join(str(s) for s in sizes)
    command += f" --database {kind}" if kind != "mongodb" else " --database-url …"
    print(write_table_report(runs, out, command))
    print(f"written: {out / 'table-size.md'}")


def _write_cost(url: str | None, out: Path) -> None:
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--write-cost measures PostgreSQL's triggers: give --database-url postgresql://…")
    from orders_live.sources.postgres.write_cost import markdown, measure_write_cost

    table = markdown(asyncio.run(measure_write_cost(url)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "write-cost.md").write_text(table)
    print(table)
    print(f"written: {out / 'write-cost.md'}")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "database_url": args.database_url,
            "embedded_database": args.database,
            "data_dir": args.data_dir,
        }.items()
        if v is not None
    }
    return Settings(**overrides)


def _run_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """asyncio's loop, or uvloop's when asked for and installed."""
    log = logging.getLogger(__name__)
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("event_loop=uvloop, but uvloop is not installed: using asyncio's")
        else:
            log.info("event loop: uvloop")
            uvloop.run(main)
            return
    log.info("event loop: asyncio")
    asyncio.run(main)


async def _serve(settings: Settings, rate: float | None = None) -> None:
    service = Service(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    traffic = Supervisor()  # the demo's simulated traffic: a death is logged and it starts again
    try:
        await service.start()
        banner = f"orders-live is running: open {service.url}/  (Ctrl-C stops it)"
        if settings.log_format == "json":
            logging.getLogger("orders_live").info(banner)
        else:
            print(banner, flush=True)
        if rate is not None:
            token = settings.write_token or settings.read_token
            traffic.start("demo.simulator", lambda: _simulate(service.url, rate, None, None, token))
        await stop.wait()
    finally:
        await traffic.stop()
        await service.stop()


async def _simulate(url: str, rate: float, count: int | None, seed: int | None, token: str | None) -> None:
    async with aiohttp.ClientSession() as session:
        await Simulator(OrdersClient(url, session, token), rate, seed).run(count)


async def _with_client(url: str, token: str | None, call: Callable[[OrdersClient], Awaitable[Any]]) -> None:
    async with aiohttp.ClientSession() as session:
        result = await call(OrdersClient(url, session, token))
        if result is not None:
            print(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    serving = args.command in ("serve", "demo")
    configure_logging(settings.log_level if serving else "WARNING", settings.log_format)
    try:
        if args.command in ("serve", "demo"):
            _run_loop(_serve(_settings(args), args.rate if args.command == "demo" else None), settings.event_loop)
        elif args.command == "watch":
            wanted: dict[str, Any] = {"status": args.status} if args.status else {}
            if args.id is not None:
                wanted = {"id": args.id}
            with contextlib.suppress(KeyboardInterrupt):
                watcher = Watcher([args.url, *args.also], wanted, as_json=args.json, token=args.token, limit=args.limit)
                asyncio.run(watcher.run())
        elif args.command == "bench":
            _bench(args)
        elif args.command == "simulate":
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_simulate(args.url, args.rate, args.count, args.seed, args.token))
        elif args.command == "create":
            asyncio.run(
                _with_client(
                    args.url, args.token, lambda c: c.create(args.customer_name, args.product_name, args.status)
                )
            )
        elif args.command == "update":
            fields = {
                k: v
                for k, v in {
                    "customer_name": args.customer_name,
                    "product_name": args.product_name,
                    "status": args.status,
                }.items()
                if v is not None
            }
            asyncio.run(_with_client(args.url, args.token, lambda c: c.update(args.id, args.if_match, **fields)))
        elif args.command == "delete":
            asyncio.run(_with_client(args.url, args.token, lambda c: c.delete(args.id)))
    except (ApiRefused, Refused) as exc:  # Refused: `watch`, by a filter or a token retrying cannot change
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except aiohttp.ClientConnectionError as exc:
        print(f"cannot reach the service: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
