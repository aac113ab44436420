"""docker-compose.yml cannot run here (no Docker engine): check that it parses and that
everything it builds from or mounts is in the repository."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orders_live.settings import Settings
from orders_live.sources.options import PostgresOptions

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_every_service_has_an_image_or_a_build_context_with_its_dockerfile() -> None:
    services = compose()["services"]
    assert {"mongo", "mongo-setup", "orders-live-1", "orders-live-2", "balancer"} <= set(services)
    for name, service in services.items():
        if "build" in service:
            context = ROOT / service["build"]["context"]
            dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
            assert context.is_dir(), name
            assert dockerfile.is_file(), name
        else:
            assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+", service["image"]), name


def test_every_mounted_file_and_dockerfile_source_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_the_instances_differ_only_in_their_names_and_depend_on_a_healthy_database() -> None:
    services = compose()["services"]
    first, second = services["orders-live-1"], services["orders-live-2"]
    assert first["environment"]["ORDERS_LIVE_INSTANCE"] != second["environment"]["ORDERS_LIVE_INSTANCE"]
    assert {k: v for k, v in first["environment"].items() if k != "ORDERS_LIVE_INSTANCE"} == {
        k: v for k, v in second["environment"].items() if k != "ORDERS_LIVE_INSTANCE"
    }
    assert first["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(first["healthcheck"]["test"])
    balancer = (ROOT / "nginx" / "nginx.conf").read_text()
    upstreams = (ROOT / "nginx" / "orders-live-upstreams.conf").read_text()
    assert "include orders-live-upstreams.conf;" in balancer and "include orders-live-listen.conf;" in balancer
    assert "orders-live-1:8080" in upstreams and "orders-live-2:8080" in upstreams
    assert "proxy_set_header Upgrade" in balancer
    mounts = services["balancer"]["volumes"]
    for name in ("nginx.conf", "orders-live-upstreams.conf", "orders-live-listen.conf"):
        assert f"./nginx/{name}:/etc/nginx/{name}:ro" in mounts


def test_the_balancer_has_room_for_every_client_an_instance_takes() -> None:
    """Each proxied client holds two of nginx's connections (its own and the instance's);
    nginx's default of 512 stopped at about 250 clients (found by bench --through-nginx)."""
    balancer = (ROOT / "nginx" / "nginx.conf").read_text()
    connections = re.search(r"^\s*worker_connections\s+(\d+);", balancer, re.MULTILINE)
    files = re.search(r"^\s*worker_rlimit_nofile\s+(\d+);", balancer, re.MULTILINE)
    assert connections is not None and files is not None
    assert int(connections.group(1)) >= 2 * Settings().max_connections
    assert int(files.group(1)) >= int(connections.group(1))


def test_the_postgres_profile_runs_an_instance_on_a_healthy_postgresql() -> None:
    services = compose()["services"]
    database, instance = services["postgres"], services["orders-live-pg"]
    assert database["profiles"] == instance["profiles"] == ["postgres"]
    assert "pg_isready" in database["healthcheck"]["test"]
    assert instance["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert instance["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "/readyz" in " ".join(instance["healthcheck"]["test"])
    assert not any("profiles" in services[name] for name in ("mongo", "orders-live-1", "orders-live-2", "balancer"))
    schema = ROOT / "backend" / "orders_live" / "sources" / "postgres" / "sql" / "schema.sql"
    assert schema.resolve() == (ROOT / "postgres" / "schema.sql").resolve()  # the package's link to postgres/


def test_the_postgres_service_can_give_the_wal_feed_and_the_instance_keeps_the_default_feed() -> None:
    """The server runs with logical decoding and room for the WAL feed's slot and WAL sender; the
    instance's feed is the default (auto: the WAL, which this server can give) unless
    ORDERS_LIVE_PG_CHANGES says otherwise."""
    services = compose()["services"]
    command = services["postgres"]["command"]
    assert command[0] == "postgres"
    assert all(flag == "-c" for flag in command[1::2]) and len(command) % 2 == 1
    settings = {name: value for name, _, value in (setting.partition("=") for setting in command[2::2])}
    assert settings["wal_level"] == "logical"
    assert int(settings["max_replication_slots"]) >= 1 and int(settings["max_wal_senders"]) >= 1
    changes = services["orders-live-pg"]["environment"]["ORDERS_LIVE_PG_CHANGES"]
    assert changes == "${ORDERS_LIVE_PG_CHANGES:-auto}"
    assert PostgresOptions.model_fields["changes"].default == "auto"  # the service's own default


def test_only_nginx_publishes_a_port() -> None:
    """The instances and the databases are reachable inside the compose network only: a client
    from outside meets nginx, never an instance's own port (nor its /metrics)."""
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"balancer", "balancer-pg"}
    for name in ("balancer", "balancer-pg"):
        assert services[name]["image"].startswith("nginx:")
        assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in services[name]["volumes"]
    assert services["balancer-pg"]["profiles"] == ["postgres"]
    assert (
        "./nginx/orders-live-pg-upstreams.conf:/etc/nginx/orders-live-upstreams.conf:ro"
        in (services["balancer-pg"]["volumes"])
    )
    assert "orders-live-pg:8080" in (ROOT / "nginx" / "orders-live-pg-upstreams.conf").read_text()
    balancer = (ROOT / "nginx" / "nginx.conf").read_text()
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", balancer)


def test_the_instances_take_their_allowed_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """nginx passes the client's Host: an operator whose users type a name sets it."""
    for name in ("orders-live-1", "orders-live-2", "orders-live-pg"):
        assert compose()["services"][name]["environment"]["ORDERS_LIVE_ALLOWED_HOSTS"] == (
            "${ORDERS_LIVE_ALLOWED_HOSTS:-[]}"
        )
    monkeypatch.setenv("ORDERS_LIVE_ALLOWED_HOSTS", "[]")  # the default, as compose passes it
    assert Settings().allowed_hosts == []
    monkeypatch.setenv("ORDERS_LIVE_ALLOWED_HOSTS", '["orders.example"]')
    assert Settings().allowed_hosts == ["orders.example"]
