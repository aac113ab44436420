"""Guardrails, enforced here in code whatever the model says.

* Each trigger has an allow-list of tools: ``shipped`` may call only ``notify_customer``,
  ``pending_too_long`` only ``draft_follow_up``, a question only the read-only tools.
* Arguments are parsed against the tool's schema (``tools.ARGUMENTS``) and against the
  trigger: an action's ``order_id`` must be the trigger's order.
* A trigger may make at most ``model_calls`` model calls and ``tool_calls`` tool calls, and
  at most one action; the agent as a whole at most so many of each per minute (a pace: it
  waits for room) and at most ``model_calls_per_hour`` model calls in any hour (a budget:
  past it a trigger is refused with ``hourly_budget`` and recorded as skipped, without a
  model call). What waits meanwhile is bounded by the trigger queue (``trigger_queue``).
Every refusal is a ``Refusal`` with a code and a reason, recorded by the caller.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from orders_live.agent.tools import ACTION_TOOLS, ARGUMENTS, READ_TOOLS

ALLOWED: dict[str, tuple[str, ...]] = {
    "pending_too_long": ("draft_follow_up",),
    "shipped": ("notify_customer",),
    "question": READ_TOOLS,
}
ARGUMENTS_MAX = 4_000  # characters of a tool call's raw arguments


class Refusal(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason = code, reason


@dataclass(frozen=True, slots=True)
class Limits:
    model_calls: int = 4  # per trigger
    tool_calls: int = 4  # per trigger
    model_calls_per_minute: int = 30
    tool_calls_per_minute: int = 60
    model_calls_per_hour: int = 500


def check_call(trigger: str, order_id: int | None, tool: str, raw_arguments: str) -> BaseModel:
    """The call's validated arguments, or a ``Refusal``."""
    if tool not in ARGUMENTS:
        raise Refusal("unknown_tool", f"there is no tool {tool[:64]!r}")
    if tool not in ALLOWED[trigger]:
        allowed = ", ".join(ALLOWED[trigger])
        raise Refusal("tool_not_allowed", f"{trigger} may call only {allowed}, not {tool}")
    if len(raw_arguments) > ARGUMENTS_MAX:
        raise Refusal("invalid_arguments", f"the arguments are longer than {ARGUMENTS_MAX} characters")
    try:
        decoded = json.loads(raw_arguments or "{}")
    except ValueError:
        raise Refusal("invalid_arguments", "the arguments are not valid JSON") from None
    if not isinstance(decoded, dict):
        raise Refusal("invalid_arguments", "the arguments must be a JSON object")
    try:
        arguments = ARGUMENTS[tool].model_validate(decoded)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        raise Refusal("invalid_arguments", fields[:500]) from None
    asked = getattr(arguments, "order_id", None)
    if tool in ACTION_TOOLS and asked != order_id:
        raise Refusal("wrong_order", f"this trigger is about order {order_id}, not {asked}")
    return arguments


class TriggerBudget:
    """What one trigger may still do."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.model_calls = 0
        self.tool_calls = 0
        self.acted = False

    def model_call(self) -> None:
        if self.model_calls >= self.limits.model_calls:
            raise Refusal("model_call_cap", f"a trigger may make at most {self.limits.model_calls} model calls")
        self.model_calls += 1

    def tool_call(self) -> None:
        if self.tool_calls >= self.limits.tool_calls:
            raise Refusal("tool_call_cap", f"a trigger may make at most {self.limits.tool_calls} tool calls")
        self.tool_calls += 1

    def action(self) -> None:
        if self.acted:
            raise Refusal("one_action", "a trigger may take one action, and this one has")


class MinuteBudget:
    """At most ``per_minute`` calls in any 60 seconds; ``take`` waits for room."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        self._calls: collections.deque[float] = collections.deque()
        self.waited = 0  # times a caller had to wait

    async def take(self) -> None:
        while True:
            now = self.clock()
            while self._calls and self._calls[0] <= now - 60.0:
                self._calls.popleft()
            if len(self._calls) < self.per_minute:
                self._calls.append(now)
                return
            self.waited += 1
            await asyncio.sleep(self._calls[0] + 60.0 - now)


class HourBudget:
    """At most ``per_hour`` calls in any 3,600 seconds; ``take`` refuses past it, at once."""

    def __init__(self, per_hour: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_hour, self.clock = per_hour, clock
        self._calls: collections.deque[float] = collections.deque()

    @property
    def left(self) -> int:
        self._forget(self.clock())
        return self.per_hour - len(self._calls)

    def take(self) -> None:
        now = self.clock()
        self._forget(now)
        if len(self._calls) >= self.per_hour:
            again = self._calls[0] + 3600.0 - now
            raise Refusal(
                "hourly_budget",
                f"skipped: the agent's budget of {self.per_hour} model calls an hour is spent"
                f" (room again in {again:.0f} s)",
            )
        self._calls.append(now)

    def _forget(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - 3600.0:
            self._calls.popleft()
