"""The ``orders-live`` command."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp

from orders_live.cli.agent import add_agent_parsers, run_agent_command, run_ask_command
from orders_live.cli.bench import EMBEDDED_DATABASES, add_bench_parser, run_bench_command
from orders_live.cli.interruption import run_command, stop_within, until_stopped
from orders_live.cli.token import add_token_parser, run_token_command
from orders_live.cli.workers import serve_workers, workers_option
from orders_live.client.display import shown
from orders_live.client.refusals import Refused
from orders_live.client.rest import ApiRefused, OrdersClient
from orders_live.client.simulator import Simulator
from orders_live.client.tokens import TokenSource, token_source
from orders_live.client.watch import Watcher
from orders_live.domain.order import STATUSES
from orders_live.log_format import configure_logging
from orders_live.runtime.supervisor import Supervisor
from orders_live.settings import Settings

if TYPE_CHECKING:
    from orders_live.service import Service

DEFAULT_URL = "http://127.0.0.1:8080"
LIVE_WAIT = 30.0  # seconds: how long start-up waits for the change feed before printing its URLs
DEMO_PENDING_AFTER = 60.0  # seconds: the demo's agent drafts follow-ups for orders pending a minute
TRAFFIC_STOP = 10.0  # seconds the demo's traffic (simulator, agent, token files) may take to stop


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

    serve = server_command("serve", "run the service")
    serve.add_argument(
        "--workers",
        type=workers_option,
        metavar="N",
        help="processes sharing the port, each a full instance; auto: one per core (default 1)",
    )
    demo = server_command("demo", "run the service with simulated orders traffic")
    demo.add_argument("--rate", type=float, default=2.0, help="simulated writes per second (default 2)")

    def client_command(name: str, text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
        token = command.add_mutually_exclusive_group()
        token.add_argument(
            "--token", default=os.environ.get("ORDERS_LIVE_TOKEN"), help="access token (default $ORDERS_LIVE_TOKEN)"
        )
        token.add_argument(
            "--token-file",
            default=os.environ.get("ORDERS_LIVE_TOKEN_FILE"),
            help="a file holding the token, re-read when it changes (default $ORDERS_LIVE_TOKEN_FILE)",
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
    add_agent_parsers(client_command)
    add_bench_parser(commands)
    add_token_parser(commands)
    return parser


def _given(**options: Any) -> dict[str, Any]:
    """The options the command line gave (argparse leaves the others None)."""
    return {name: value for name, value in options.items() if value is not None}


def _settings(args: argparse.Namespace) -> Settings:
    overrides = _given(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        embedded_database=args.database,
        data_dir=args.data_dir,
        workers=getattr(args, "workers", None),  # serve only
    )
    return Settings(**overrides)


def _event_loop(name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    return lambda main: _run_loop(main, name)


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


async def _serve(settings: Settings, rate: float | None, stop: asyncio.Event) -> None:
    # Here, not at the top: the commands that only talk to a service start without them.
    from orders_live.agent import Agent, AgentOptions, OfflinePlanner
    from orders_live.cli.demo import DemoIdentities
    from orders_live.service import Service

    demo = DemoIdentities(settings) if rate is not None and DemoIdentities.wanted(settings) else None
    service = Service(demo.settings, routes=demo.routes()) if demo else Service(settings)
    traffic = Supervisor()  # the demo's simulated traffic and agent: a death is logged and it starts again
    try:
        await service.start()
        await _until_live(service, stop)
        if stop.is_set():
            return
        banner = [f"orders-live is running: open {service.url}/  (Ctrl-C stops it)"]
        if demo is not None:
            banner = ["orders-live is running (Ctrl-C stops it); open the dashboard", *demo.urls(service.url)]
            banner.append(f"  tokens for the command line, kept fresh: {demo.folder / 'tokens'}/*.jwt")
        for line in banner if settings.worker is None else []:  # a worker's parent shows the banner
            if settings.log_format == "json":
                logging.getLogger("orders_live").info(line)
            else:
                print(line, flush=True)
        if rate is not None:
            writer: TokenSource = settings.write_token or settings.read_token
            acting: TokenSource = writer
            if demo is not None:
                traffic.start("demo.tokens", demo.keep_token_files)
                writer = lambda: demo.token("staff", "demo-simulator")  # noqa: E731
                acting = lambda: demo.token("agent", "demo-agent")  # noqa: E731
            traffic.start("demo.simulator", lambda: _simulate(service.url, rate, None, None, writer))
            # The agent beside it, offline, with a threshold a demo reaches (docs/agent.md).
            options = AgentOptions(pending_after=DEMO_PENDING_AFTER)
            traffic.start("demo.agent", lambda: Agent(service.url, OfflinePlanner(), options, token=acting).run())
        await stop.wait()
    finally:
        await stop_within(traffic, TRAFFIC_STOP, "the demo's traffic")
        await service.stop()


async def _until_live(service: Service, stop: asyncio.Event) -> None:
    """The URLs are printed once the change feed is live (a dashboard opened at once gets its
    orders, not ``unavailable``), or after ``LIVE_WAIT`` with a line that says it is not yet.
    Ctrl-C during the wait stops at once."""
    if service.hub is None:
        return
    live = asyncio.create_task(service.hub.wait_ready(LIVE_WAIT), name="cli.until-live")
    stopping = asyncio.create_task(stop.wait(), name="cli.stop-wait")
    try:
        await asyncio.wait({live, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (live, stopping):
            task.cancel()
        await asyncio.gather(live, stopping, return_exceptions=True)
    if not stop.is_set() and live.done() and not live.cancelled() and live.exception() is not None:
        logging.getLogger(__name__).warning(
            "the change feed is not live after %.0f s (see the lines above): the dashboard shows "
            "it as connecting until it is",
            LIVE_WAIT,
        )


async def _simulate(url: str, rate: float, count: int | None, seed: int | None, token: TokenSource) -> None:
    async with aiohttp.ClientSession() as session:
        await Simulator(OrdersClient(url, session, token), rate, seed).run(count)


async def _with_client(url: str, token: TokenSource, call: Callable[[OrdersClient], Awaitable[Any]]) -> None:
    async with aiohttp.ClientSession() as session:
        result = await call(OrdersClient(url, session, token))
        if result is not None:
            print(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    serving = args.command in ("serve", "demo", "agent")
    configure_logging(settings.log_level if serving else "WARNING", settings.log_format)
    if serving:  # SIGUSR1 writes every thread's stack to stderr: how to see where a stuck process is
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        if args.command in ("serve", "demo"):
            rate = args.rate if args.command == "demo" else None
            serving_settings = _settings(args)
            worker = serving_settings.worker
            if rate is None and serving_settings.workers > 1 and worker is None:
                run_command(lambda stop: serve_workers(serving_settings, stop), asyncio.run, "orders-live stopped")
            else:
                run_command(
                    lambda stop: _serve(serving_settings, rate, stop),
                    _event_loop(settings.event_loop),
                    "orders-live stopped" if worker is None else f"orders-live worker {worker} stopped",
                )
        elif args.command == "watch":
            wanted: dict[str, Any] = {"status": args.status} if args.status else {}
            if args.id is not None:
                wanted = {"id": args.id}
            watcher = Watcher(
                [args.url, *args.also],
                wanted,
                as_json=args.json,
                token=token_source(args.token, args.token_file),
                limit=args.limit,
            )
            run_command(
                lambda stop: until_stopped(watcher.run(), stop, "watch"), asyncio.run, "-- stopped", out=sys.stderr
            )
        elif args.command == "agent":
            return run_agent_command(args)
        elif args.command == "ask":
            return run_ask_command(args)
        elif args.command == "bench":
            run_bench_command(args)
        elif args.command == "token":
            return run_token_command(args)
        elif args.command == "simulate":
            simulation = _simulate(
                args.url, args.rate, args.count, args.seed, token_source(args.token, args.token_file)
            )
            run_command(
                lambda stop: until_stopped(simulation, stop, "simulate"), asyncio.run, "-- stopped", out=sys.stderr
            )
        elif args.command == "create":
            asyncio.run(
                _with_client(
                    args.url,
                    token_source(args.token, args.token_file),
                    lambda c: c.create(args.customer_name, args.product_name, args.status),
                )
            )
        elif args.command == "update":
            fields = _given(customer_name=args.customer_name, product_name=args.product_name, status=args.status)
            asyncio.run(
                _with_client(
                    args.url,
                    token_source(args.token, args.token_file),
                    lambda c: c.update(args.id, args.if_match, **fields),
                )
            )
        elif args.command == "delete":
            asyncio.run(_with_client(args.url, token_source(args.token, args.token_file), lambda c: c.delete(args.id)))
    except (ApiRefused, Refused) as exc:  # Refused: `watch`, by a filter or a token retrying cannot change
        print(f"refused: {shown(str(exc))}", file=sys.stderr)
        return 1
    except aiohttp.ClientConnectionError as exc:
        print(f"cannot reach the service: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
