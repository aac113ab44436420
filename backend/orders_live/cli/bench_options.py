"""``orders-live bench``'s command line: every option, what it measures, and its defaults
(``cli/bench.py`` runs what they ask for)."""

from __future__ import annotations

from typing import Any

EMBEDDED_DATABASES = ("nx-27017", "postgres")


def add_bench_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure push against polling",
        description=(
            "Start the service, clients in separate processes and a writer; report latency, losses, CPU and memory."
        ),
    )
    bench.add_argument(
        "--clients",
        default="1000",
        metavar="N[,N…]",
        help="Socket.IO clients (default 1000); several: each rate at each count (e.g. 10000,20000)",
    )
    bench.add_argument(
        "--rates", help="writes per second to sweep (default 5,10,20,50,70,100; with --instances 100,500)"
    )
    bench.add_argument("--duration", type=float, default=10.0, help="seconds of writing per case (default 10)")
    bench.add_argument(
        "--sse-clients",
        type=int,
        help="SSE clients, at the lowest and 50 writes/s (default 200 up to 1,000 Socket.IO clients, else 0)",
    )
    bench.add_argument(
        "--poll-clients",
        type=int,
        help="polling clients, at the lowest rate (default 100 up to 1,000 Socket.IO clients, else 0)",
    )
    bench.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)")
    bench.add_argument(
        "--processes", type=int, help="client processes (default: one per 2,500 clients of a case, at least 2)"
    )
    bench.add_argument(
        "--workers",
        metavar="N[,N…]",
        help=(
            "the service's serve --workers (a number or auto); several (e.g. 1,2): each case once per worker count"
            " (default 1, or as many as the open-files limit needs for the clients)"
        ),
    )
    bench.add_argument(
        "--sigterm",
        action="store_true",
        help="end the last case with SIGTERM to the service, its clients connected: how long it takes to exit, "
        "how many clients were told to reconnect",
    )
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
        "--through-nginx",
        action="store_true",
        help=(
            "two instances on one database behind Debian's nginx (the repository's nginx/nginx.conf); "
            "clients and REST writes go through nginx (starts an embedded database without a URL)"
        ),
    )
    bench.add_argument(
        "--orders",
        metavar="N[,N…]",
        help="instead: preload N orders (each size in turn); measure start-up, RSS per order, snapshots, a burst",
    )
    bench.add_argument(
        "--instances",
        metavar="K[,K…]",
        help=(
            "instead: K instances (each size in turn) follow one database while a writer writes straight to it;"
            " the database's CPU per commit and the followers' lag (instances.md)"
        ),
    )
    bench.add_argument(
        "--database",
        choices=EMBEDDED_DATABASES,
        default="nx-27017",
        help=(
            "with --orders, --instances, --attack, --external-writer or --through-nginx and no --database-url: "
            "the embedded database (default nx-27017)"
        ),
    )
    bench.add_argument(
        "--customers",
        type=int,
        metavar="N",
        help=(
            "JWT mode: the writer's orders spread over N customers ('Customer 000'…); client i holds a customer "
            "token for customer i mod N and subscribes to {}; each case is preceded by a no-delivery baseline "
            "(clients scoped to customers that own no order) for the marginal CPU per delivery"
        ),
    )
    bench.add_argument(
        "--unscoped",
        action="store_true",
        help="with --customers: every client holds a viewer token instead (each write reaches every client)",
    )
    bench.add_argument(
        "--unscoped-orders",
        action="store_true",
        help=(
            "with --customers: every client holds a viewer token and subscribes to one order, customer i mod N's"
            " (each write reaches as many clients as in the scoped run, with no scope; Socket.IO only)"
        ),
    )
    bench.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="with --customers: skip the no-delivery baseline"
    )
    bench.add_argument(
        "--attack",
        metavar="NAME[,NAME…]",
        help=(
            "instead: hostile clients against the service, each on a fresh database: subscribe-flood, forged-polls,"
            " refused-sessions, bad-tokens, or all (docs/performance.md, 'Hostile clients')"
        ),
    )
    bench.add_argument(
        "--dashboard",
        action="store_true",
        help=(
            "instead: the built dashboard in headless chromium under REST updates at each --rates (default 5,50)"
            " and a burst; Chromium's main-thread counters and commit→screen times (dashboard.json/.md;"
            " ORDERS_LIVE_FRONTEND_DIR picks the build, default frontend/dist)"
        ),
    )
    bench.add_argument(
        "--dashboard-rows",
        default="500,5000",
        metavar="N[,N…]",
        help="with --dashboard: table sizes (default 500,5000)",
    )
    bench.add_argument(
        "--dashboard-window", type=float, default=20.0, help="with --dashboard: seconds per rate (default 20)"
    )
    bench.add_argument(
        "--dashboard-burst", type=int, default=1000, help="with --dashboard: updates in the burst (default 1000)"
    )
    bench.add_argument(
        "--tag", default="", help="with --attack or --dashboard: a name for the result files (before, after)"
    )
    bench.add_argument("--out", default="docs/performance", help="folder for results.json/.md and latency.png")
