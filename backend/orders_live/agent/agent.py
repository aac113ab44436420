"""``Agent``: follows every order through ``LiveOrders``, and for each trigger runs one
bounded conversation with its planner, executing only the calls the guardrails allow.

Each step is recorded in the service's action log: the action (or, with ``dry_run``, the
decision), every refusal with its reason, a model's failure, or the model's choice to do
nothing. A trigger already acted on (found in the log: also after a restart, or by another
agent) is skipped before any model call; the log's unique key settles a race. If the service
cannot be reached, or its action log asks it to slow down (429), the trigger is retried, with
growing delays, until it is handled.

What the agent spends is bounded: triggers wait in a bounded queue (its overflow policy drops
the oldest, counted), an order has at most one trigger of a kind per ``trigger_window``, and
model calls stop for the rest of the hour past ``Limits.model_calls_per_hour`` (each trigger
meanwhile is recorded as a ``refusal`` with code ``hourly_budget``: skipped, visibly).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from orders_live.agent.guardrails import (
    ALLOWED,
    HourBudget,
    Limits,
    MinuteBudget,
    Refusal,
    TriggerBudget,
    check_call,
)
from orders_live.agent.metrics import AgentMetrics
from orders_live.agent.planner import ModelFailed, Planner, ToolCall
from orders_live.agent.prompt import trigger_conversation
from orders_live.agent.service_api import ActionLog, ServiceError
from orders_live.agent.tools import ACTION_TOOLS, tool_schemas
from orders_live.agent.triggers import Trigger, TriggerWatch
from orders_live.client.live_orders import LiveOrders
from orders_live.client.tokens import TokenSource
from orders_live.runtime.backoff import Backoff
from orders_live.runtime.supervisor import Supervisor

log = logging.getLogger(__name__)

RAW_KEPT = 1_000  # characters of a refused call's arguments kept in its record (the log takes 4,000 encoded)


@dataclass(frozen=True, slots=True)
class AgentOptions:
    pending_after: float = 86_400.0
    shipped_lookback: float = 3_600.0
    dry_run: bool = False
    limits: Limits = field(default_factory=Limits)
    queue_capacity: int = 1_000  # triggers waiting at most; past it the oldest is dropped
    trigger_window: float = 3_600.0  # seconds: one trigger per order and kind within it (0: off)


class Agent:
    def __init__(
        self,
        urls: str | Sequence[str],
        planner: Planner,
        options: AgentOptions | None = None,
        token: TokenSource = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.planner, self.options, self.token = planner, options or AgentOptions(), token
        self.metrics = metrics or AgentMetrics()
        self.watch = TriggerWatch(
            self.options.pending_after,
            self.options.shipped_lookback,
            capacity=self.options.queue_capacity,
            window=self.options.trigger_window,
            on_drop=self.metrics.dropped,
        )
        self.live = LiveOrders(self.urls, token=token, on_event=lambda e: self.watch.observe(e, self.live.orders))
        self.metrics.live.set_function(lambda: 1.0 if self.live.state == "live" else 0.0)
        self.model_minute = MinuteBudget(self.options.limits.model_calls_per_minute)
        self.tool_minute = MinuteBudget(self.options.limits.tool_calls_per_minute)
        self.model_hour = HourBudget(self.options.limits.model_calls_per_hour)
        self.metrics.queue_depth.set_function(lambda: len(self.watch.ready))
        self.metrics.model_calls_left.set_function(lambda: self.model_hour.left)
        self.handled = 0  # triggers finished (acted on, refused, failed or skipped)
        self._log: ActionLog | None = None

    async def run(self) -> None:
        """Until cancelled, or until ``LiveOrders`` ends for good (its failure is raised)."""
        tasks = Supervisor()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            self._log = ActionLog(self.urls[0], session, self.token)
            try:
                await self.live.start()
                tasks.start("agent.timers", self.watch.run_timers)
                tasks.start("agent.worker", self._work)
                async for _ in self.live.events():
                    pass  # the watch sees every event through on_event; this waits for the end
            finally:
                await tasks.stop()
                await self.live.close()

    async def _work(self) -> None:
        backoff = Backoff("the agent's calls to orders-live", log, first=0.5, cap=10.0)
        while True:
            trigger = await self.watch.ready.get()
            while True:
                try:
                    await self.handle(trigger)
                    backoff.reset()
                    break
                except asyncio.CancelledError:
                    raise
                except ServiceError as exc:
                    if exc.status < 500 and exc.status != 429:  # a record the log refuses: retrying cannot help
                        log.error("the action log refused a record for %s: %s", trigger.key, exc)
                        break
                    await backoff.wait(exc)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    await backoff.wait(exc)  # the same trigger again: handling it twice acts once
            self.watch.done_with(trigger)
            self.handled += 1

    # -- one trigger ----------------------------------------------------------------------
    async def handle(self, trigger: Trigger) -> None:
        assert self._log is not None
        self.metrics.triggers.labels(trigger.kind).inc()
        held = self.live.orders.get(trigger.order_id)
        if trigger.kind == "pending_too_long" and (held is None or held["version"] != trigger.version):
            self.metrics.skipped.labels("moved_on").inc()
            return
        if await self._acted(trigger):
            self.metrics.skipped.labels("already_acted").inc()
            return
        budget = TriggerBudget(self.options.limits)
        messages = trigger_conversation(trigger)
        tools = tool_schemas(ALLOWED[trigger.kind])
        while not budget.acted:
            try:
                budget.model_call()
                self.model_hour.take()
            except Refusal as refusal:
                if refusal.code == "hourly_budget":
                    self.metrics.skipped.labels("hourly_budget").inc()
                await self._refuse(trigger, None, "", refusal)
                return
            await self.model_minute.take()
            self.metrics.model_calls.inc()
            try:
                reply = await self.planner.reply(messages, tools, trigger)
            except ModelFailed as exc:
                self.metrics.model_errors.inc()
                await self._record(trigger, "model_error", reason=str(exc)[:1000])
                return
            if not reply.calls:
                await self._record(trigger, "no_action", reason=(reply.content or "no tool call")[:1000])
                return
            messages.append(reply.message())
            for call in reply.calls:
                try:
                    budget.tool_call()
                except Refusal as refusal:
                    await self._refuse(trigger, call.name, call.arguments, refusal)
                    return
                result = await self._call(trigger, budget, call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})

    async def _acted(self, trigger: Trigger) -> bool:
        assert self._log is not None
        # A shipped order first seen in a snapshot: any notification for it counts, since
        # the version it shipped at is unknown.
        version = None if trigger.from_snapshot else trigger.version
        if await self._log.acted(trigger.kind, trigger.order_id, version):
            return True
        if self.options.dry_run:
            filters: dict[str, str | int] = {"kind": "dry_run", "trigger": trigger.kind, "order_id": trigger.order_id}
            if version is not None:
                filters["order_version"] = version
            return bool(await self._log.actions(**filters))
        return False

    async def _call(self, trigger: Trigger, budget: TriggerBudget, call: ToolCall) -> dict[str, Any]:
        """One tool call: refused (and recorded), or executed; what the model is told."""
        assert self._log is not None
        await self.tool_minute.take()
        try:
            arguments = check_call(trigger.kind, trigger.order_id, call.name, call.arguments)
            budget.action()
        except Refusal as refusal:
            await self._refuse(trigger, call.name, call.arguments, refusal)
            return {"error": refusal.code, "reason": refusal.reason}
        assert call.name in ACTION_TOOLS  # the allow-lists of triggers hold only action tools
        budget.acted = True
        kind = "dry_run" if self.options.dry_run else "action"
        values = arguments.model_dump()
        stored, new = await self._log.record(
            self._fields(trigger, kind) | {"tool": call.name, "arguments": values, "message": values["message"]}
        )
        self.metrics.tool_call(call.name, ("dry_run" if self.options.dry_run else "executed") if new else "duplicate")
        if new:
            log.info("%s for order %d v%d: %s (%s)", trigger.kind, trigger.order_id, trigger.version, call.name, kind)
        return {"ok": True, "recorded": stored.get("seq"), "already_recorded": not new}

    async def _refuse(self, trigger: Trigger, tool: str | None, raw: str, refusal: Refusal) -> None:
        self.metrics.refusals.labels(refusal.code).inc()
        if tool is not None:
            self.metrics.tool_call(tool, "refused")
        log.warning("refused for %s of order %d: %s", trigger.kind, trigger.order_id, refusal)
        name, arguments = refused_call(tool, raw)
        reason = f"{refusal.code}: {refusal.reason}"[:1000]
        await self._record(trigger, "refusal", tool=name, arguments=arguments, reason=reason)

    async def _record(self, trigger: Trigger, kind: str, **fields: Any) -> None:
        assert self._log is not None
        await self._log.record(self._fields(trigger, kind) | fields)

    def _fields(self, trigger: Trigger, kind: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "trigger": trigger.kind,
            "order_id": trigger.order_id,
            "order_version": trigger.version,
            "model": self.planner.name,
        }


TOOL_NAME = re.compile(r"[a-z_]{1,64}")


def refused_call(tool: str | None, raw: str) -> tuple[str | None, dict[str, Any]]:
    """A refused call as its record keeps it: the tool's name if it is one (else in the
    arguments, cut), and its decoded arguments if short, else their text, cut."""
    kept: dict[str, Any] = {}
    if tool is not None and not TOOL_NAME.fullmatch(tool):
        kept["tool"], tool = tool[:64], None
    try:
        decoded = json.loads(raw) if raw else {}
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and len(json.dumps(decoded)) <= RAW_KEPT:
        kept["arguments"] = decoded
    else:
        cut = raw[:RAW_KEPT]
        while len(json.dumps(cut)) > RAW_KEPT:  # quotes and escapes grow when encoded
            cut = cut[: len(cut) // 2]
        kept["raw"] = cut
    return tool, kept
