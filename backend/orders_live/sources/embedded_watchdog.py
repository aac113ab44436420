"""The watchdog of an embedded database (nx-27017 or PostgreSQL as a child process).

``EmbeddedWatchdog.run`` is a job the service runs under its supervisor (``TASK``). It waits
for the server to exit; while the service runs, an exit is a death: the task ends with the
server's exit code, which the supervisor counts and ``/readyz`` shows, and the task's restart
(after the supervisor's growing, capped, jittered delay) starts the server again, on the same
port and files. The service's clients reconnect by themselves. On the way out the service
stops this job before it stops the server.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

TASK = "embedded.watchdog"


class EmbeddedServer(Protocol):
    process: asyncio.subprocess.Process | None

    @property
    def log_file(self) -> Path: ...

    async def start(self) -> str: ...


class EmbeddedWatchdog:
    def __init__(self, server: EmbeddedServer, name: str) -> None:
        self.server, self.name = server, name

    async def run(self) -> None:
        """Until cancelled: starts the server again if it is not running, then waits for it to exit."""
        process = self.server.process
        if process is None or process.returncode is not None:
            log.warning("the embedded database %s is not running: starting it again", self.name)
            await self.server.start()
            process = self.server.process
            if process is None:
                raise RuntimeError(f"the embedded database {self.name} did not start")
        code = await process.wait()
        raise RuntimeError(f"the embedded database {self.name} exited with {code}; see {self.server.log_file}")
