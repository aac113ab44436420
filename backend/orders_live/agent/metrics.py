"""What the agent counts (its own ``/metrics``, ``--metrics-port``): triggers, those skipped,
suppressed (one per order and kind per window) or dropped from a full queue (by the overflow
policy), the queue's depth, model calls (and the hour's budget left) and errors, tool calls by
outcome, refusals by code. The service's ``/metrics`` counts the records appended to the
action log too (``orders_live_agent_actions_total``)."""

from __future__ import annotations

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from orders_live.agent.tools import ARGUMENTS
from orders_live.agent.trigger_queue import OVERFLOW_POLICY, Why
from orders_live.agent.triggers import TRIGGERS, Trigger

OUTCOMES = ("executed", "dry_run", "refused", "duplicate")


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.triggers = Counter(
            "orders_live_agent_triggers", "Triggers that fired, by trigger.", ["trigger"], registry=r
        )
        self.skipped = Counter(
            "orders_live_agent_triggers_skipped",
            "Triggers taken from the queue but not acted on: already acted on (also before a restart),"
            " the order moved on, or the hour's budget of model calls spent (hourly_budget, recorded).",
            ["why"],
            registry=r,
        )
        self.suppressed = Counter(
            "orders_live_agent_triggers_suppressed",
            "Triggers not queued: their order had a trigger of the same kind within the window.",
            ["trigger"],
            registry=r,
        )
        self.overflow = Counter(
            "orders_live_agent_queue_overflow",
            "Triggers dropped because the trigger queue was full, by the overflow policy that chose them.",
            ["policy", "trigger"],
            registry=r,
        )
        self.queue_depth = Gauge("orders_live_agent_queue_depth", "Triggers waiting for the worker.", registry=r)
        self.model_calls_left = Gauge(
            "orders_live_agent_model_calls_left_this_hour", "Model calls left in the hourly budget.", registry=r
        )
        self.model_calls = Counter("orders_live_agent_model_calls", "Model calls made.", registry=r)
        self.model_errors = Counter(
            "orders_live_agent_model_errors", "Model calls that failed after their retries.", registry=r
        )
        self.tool_calls = Counter(
            "orders_live_agent_tool_calls", "Tool calls, by tool and outcome.", ["tool", "outcome"], registry=r
        )
        self.live = Gauge("orders_live_agent_live", "1 while the agent's view of the orders is live.", registry=r)
        self.refusals = Counter("orders_live_agent_refusals", "Refused calls, by guardrail.", ["code"], registry=r)
        for trigger in TRIGGERS:
            self.triggers.labels(trigger)
            self.suppressed.labels(trigger)
            self.overflow.labels(OVERFLOW_POLICY, trigger)
        for why in ("already_acted", "moved_on", "hourly_budget"):
            self.skipped.labels(why)
        for tool in ARGUMENTS:
            for outcome in OUTCOMES:
                self.tool_calls.labels(tool, outcome)

    def dropped(self, trigger: Trigger, why: Why) -> None:
        """A trigger the queue did not keep (``TriggerQueue.on_drop``)."""
        if why == "suppressed":
            self.suppressed.labels(trigger.kind).inc()
        else:
            self.overflow.labels(why, trigger.kind).inc()

    def tool_call(self, tool: str, outcome: str) -> None:
        self.tool_calls.labels(tool if tool in ARGUMENTS else "unknown", outcome).inc()

    async def serve(self, host: str, port: int) -> web.AppRunner:
        """``GET /metrics`` on ``host:port``; the caller cleans the runner up."""

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=prometheus_client.generate_latest(self.registry),
                headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner
