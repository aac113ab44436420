"""Fast tier: the bench's nginx front (the repository's nginx.conf, unchanged) and how the
report names and sums a case that went through it. No service process is started."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from orders_live.bench import balancer
from orders_live.bench.balancer import NginxFront, free_port, nginx_available
from orders_live.bench.report import markdown, stable_rates
from orders_live.bench.stats import summary

pytestmark = pytest.mark.fast


def row(rate: float, **extra: Any) -> dict[str, Any]:
    return {
        "transport": "socketio",
        "clients": 200,
        "writes_per_s": rate,
        "deliveries_per_s": 200 * rate,
        "latency_ms": summary([5.0, 9.0]),
        "lost": 0,
        "duplicated": 0,
        "out_of_order": 0,
        "server_cpu_per_core": 0.12,
        "server_us_per_delivery": 15.0,
        "server_peak_rss_mb": 140.0,
        "poll_requests_per_s": None,
        "poll_empty_share": None,
        "valid": True,
        **extra,
    }


def test_a_case_through_nginx_is_named_so_and_its_sums_and_split_are_shown() -> None:
    balanced = row(
        50,
        case="socketio via nginx, 2 instances",
        instances=2,
        balancer_cpu_per_core=0.07,
        instance_delivery_shares=[0.5, 0.5],
    )
    table = markdown([row(50), balanced])
    head, rule, direct, through = table.splitlines()
    assert "server CPU/core (sum of instances)" in head and "peak RSS MB (sum)" in head
    assert head.endswith("| nginx CPU/core | deliveries per instance |")
    assert rule.count("---|") == head.count("|") - 1
    assert through.startswith("| socketio via nginx, 2 instances | 200 | 50 |")
    assert through.endswith("| yes | 7% | 50% / 50% |")
    assert direct.startswith("| socketio | 200 | 50 |") and direct.endswith("| yes | – | – |")
    assert "nginx" not in markdown([row(50)])  # a bench without nginx keeps its old table
    assert stable_rates([row(50), balanced]).splitlines() == [
        "- socketio × 200 clients: highest stable rate 50 writes/s (tried 50)",
        "- socketio via nginx, 2 instances × 200 clients: highest stable rate 50 writes/s (tried 50)",
    ]


def test_without_nginx_the_front_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balancer, "NGINX", "/nonexistent/nginx")
    with pytest.raises(RuntimeError, match=r"install Debian's nginx \(scripts/test.sh does\)"):
        NginxFront([free_port()], free_port())


@pytest.mark.skipif(not nginx_available(), reason="Debian's nginx is not installed (scripts/test.sh installs it)")
def test_the_front_runs_the_repository_config_with_the_real_addresses() -> None:
    down, listen = free_port(), free_port()  # nothing listens on ``down``
    front = NginxFront([down], listen)
    try:
        assert (front.folder / "nginx.conf").resolve() == balancer.ROOT / "nginx" / "nginx.conf"
        assert f"server 127.0.0.1:{down} " in (front.folder / "orders-live-upstreams.conf").read_text()
        assert (front.folder / "orders-live-listen.conf").read_text() == f"listen 127.0.0.1:{listen};\n"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{front.url}/readyz", timeout=5)
        refused.value.close()
        assert refused.value.code == 502  # nginx itself answers: its one instance is down
        assert "connect() failed" in front.errors()
    finally:
        front.stop()
    assert front.process.returncode == 0  # SIGQUIT: a graceful stop
    assert not front.folder.exists()
