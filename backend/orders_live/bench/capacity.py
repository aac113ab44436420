"""What the bench needs of the machine to open tens of thousands of connections: client
processes enough, descriptors enough, and source addresses enough.

- Processes: one generator per ``CLIENTS_PER_PROCESS`` clients (at least 2) unless given.
- Descriptors: the bench raises its own open-files limit, the hard one too when it may (root
  with CAP_SYS_RESOURCE), so that the service and the generators it starts inherit room for
  every client; when the clients still do not fit, the service runs as several workers.
- Source addresses: a connection to one service address is told apart by its source (address,
  port) only, so one source address holds at most the ephemeral port range
  (``/proc/sys/net/ipv4/ip_local_port_range``); past ``PORT_SHARE`` of it (a margin for the
  ports a case before left in TIME_WAIT), clients take further 127.0.0.x source addresses.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path

CLIENTS_PER_PROCESS = 2_500
PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PORT_SHARE = 0.6  # of the ephemeral ports one source address's clients may take
CONNECTION_MARGIN = 512  # max_connections beyond the clients: the bench's own requests, a case's stragglers
FILES_MARGIN = 1_024  # descriptors beyond the clients (database, listeners, logs, the margin above)

SourcePlan = list[tuple[str | None, int]]  # runs of clients: (source address, None: the kernel's; how many)


def processes_for(clients: int, given: int | None) -> int:
    """Generator processes for ``clients``: ``given``, else one per ``CLIENTS_PER_PROCESS`` (at least 2)."""
    if given is not None:
        return given
    return max(2, math.ceil(clients / CLIENTS_PER_PROCESS))


def ephemeral_ports(path: Path = PORT_RANGE) -> int:
    """How many ephemeral ports the kernel hands out (Linux's default range when unreadable)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return high - low + 1


def clients_per_address(ports: int) -> int:
    return max(1, int(ports * PORT_SHARE))


def source_plan(first: int, count: int, total: int, per_address: int) -> SourcePlan:
    """Source addresses for clients ``first``..``first + count`` of ``total``: none of their own
    (the kernel picks, from 127.0.0.1) when ``total`` fits one address, else client ``i`` takes
    127.0.0.(1 + i // per_address)."""
    if total <= per_address:
        return [(None, count)] if count else []
    plan: SourcePlan = []
    index, end = first, first + count
    while index < end:
        block = index // per_address
        if block + 1 > 254:
            raise ValueError(f"{total} clients need more than 254 source addresses of {per_address} ports")
        taken = min(end, (block + 1) * per_address) - index
        plan.append((f"127.0.0.{block + 1}", taken))
        index += taken
    return plan


def max_connections_for(clients: int) -> int:
    """The service's ``max_connections`` for a case of ``clients``: every one of them, and a margin."""
    return clients + CONNECTION_MARGIN


def workers_for(clients: int, open_files: int) -> int:
    """Service worker processes enough to hold ``clients`` within one process's ``open_files``
    (with a margin each): 1 when they fit, as with a hard limit the bench may not raise."""
    return max(1, math.ceil(clients / max(1, open_files - FILES_MARGIN)))


def raise_open_files(clients: int) -> int:
    """Raise this process's open-files limit (inherited by what it starts) to room for
    ``clients`` and a margin: the soft limit to the hard one, and the hard one as well when this
    process may (root); the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = clients + FILES_MARGIN
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass  # not allowed: the soft limit up to the hard one, below
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
