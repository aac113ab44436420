"""What the transports count, in the service's Prometheus registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from orders_live.domain.agent_action import KINDS


class TransportMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.slow_clients = Counter(
            "orders_live_slow_clients",
            "Clients that fell behind: merged (conflated) or resynced.",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("conflated", "resynced"):
            self.slow_clients.labels(outcome)
        self.refused_packets = Counter(
            "orders_live_refused_packets",
            "Malformed or unsupported packets refused (the client was disconnected), by reason.",
            ["reason"],
            registry=registry,
        )
        self.broken_writers = Counter(
            "orders_live_broken_writers",
            "Client writers that failed with an unexpected error (the client was disconnected).",
            ["transport"],
            registry=registry,
        )

        self.agent_actions = Counter(
            "orders_live_agent_actions",
            "Agent action records appended through this instance, by kind.",
            ["kind"],
            registry=registry,
        )
        for kind in KINDS:
            self.agent_actions.labels(kind)
        self.agent_actions_trimmed = Counter(
            "orders_live_agent_actions_trimmed",
            "Agent action records deleted by this instance's retention (agent_actions_keep, agent_actions_keep_days).",
            registry=registry,
        )

    def slow_client(self, outcome: str) -> None:
        self.slow_clients.labels(outcome).inc()
