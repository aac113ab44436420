"""Debian's nginx in front of service instances, from the repository's own nginx/nginx.conf.

The configuration is not copied: a folder gets a link to it and the two files it includes
(``orders-live-upstreams.conf``, ``orders-live-listen.conf``), written with the test's
addresses; nginx runs in the foreground with that folder as its prefix."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import stop_process

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    return Path(NGINX).is_file()


class NginxFront:
    def __init__(self, ports: list[int], listen: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="orders-live-nginx-"))
        (self.folder / "nginx.conf").symlink_to(ROOT / "nginx" / "nginx.conf")
        servers = "".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in ports)
        (self.folder / "orders-live-upstreams.conf").write_text(servers)
        (self.folder / "orders-live-listen.conf").write_text(f"listen 127.0.0.1:{listen};\n")
        self.url = f"http://127.0.0.1:{listen}"
        self.process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.folder),
                "-c",
                str(self.folder / "nginx.conf"),
                "-e",
                str(self.folder / "error.log"),
                "-g",
                f"daemon off; pid {self.folder / 'nginx.pid'};",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    log = (self.folder / "error.log").read_text() if (self.folder / "error.log").exists() else ""
                    raise RuntimeError(f"nginx did not start: {log[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGQUIT, 10)
        shutil.rmtree(self.folder, ignore_errors=True)
