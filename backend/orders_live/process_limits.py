"""The process's open-files limit: raised at start as far as the hard limit allows, so that
``max_connections`` clients (one descriptor each, plus the database's and the listener's)
can connect; logged, and a warning when it is still too low."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

SPARE_FILES = 64  # descriptors beyond the clients: database connections, listeners, logs, the dashboard


def raise_open_files_limit(max_connections: int) -> int:
    """Raise the soft limit to the hard limit; return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, max_connections + SPARE_FILES)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, wanted, exc)
    if soft < max_connections + SPARE_FILES:
        log.warning(
            "open-files limit %d (hard %s) is below max_connections %d + %d: connections past it will fail",
            soft,
            "unlimited" if hard == resource.RLIM_INFINITY else hard,
            max_connections,
            SPARE_FILES,
        )
    else:
        log.info("open-files limit %d (room for max_connections %d)", soft, max_connections)
    return soft
