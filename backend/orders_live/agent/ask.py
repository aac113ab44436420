"""``orders-live ask``: one question through the model, with only the read-only tools.

The model may call ``find_orders`` and ``get_order`` (through the service's REST API) for at
most ``limits.model_calls`` rounds; any other call is refused, recorded in the action log
(trigger ``question``) and told to the model. The answer comes back with the orders the
tools returned, so that a person can check what it rests on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from orders_live.agent.agent import refused_call
from orders_live.agent.guardrails import Limits, Refusal, check_call
from orders_live.agent.planner import Planner
from orders_live.agent.prompt import question_conversation
from orders_live.agent.service_api import ActionLog, OrdersReader
from orders_live.agent.tools import READ_TOOLS, FindOrders, GetOrder, parse_duration, tool_schemas
from orders_live.domain.order import OrderJson

QUESTION_ROUNDS = 6


@dataclass(slots=True)
class Answer:
    text: str
    orders: dict[int, OrderJson] = field(default_factory=dict)  # what the tools returned
    refusals: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # "find_orders {...}", in order


async def ask(
    question: str, planner: Planner, reader: OrdersReader, actions: ActionLog, limits: Limits | None = None
) -> Answer:
    """Raises ``NeedsModel`` (offline planner) or ``ModelFailed``."""
    limits = limits or Limits(model_calls=QUESTION_ROUNDS)
    answer = Answer("")
    messages = question_conversation(question)
    tools = tool_schemas(READ_TOOLS)
    tool_calls = 0
    for _ in range(limits.model_calls):
        reply = await planner.reply(messages, tools, None)
        if not reply.calls:
            answer.text = reply.content or ""
            return answer
        messages.append(reply.message())
        for call in reply.calls:
            tool_calls += 1
            try:
                if tool_calls > limits.tool_calls * limits.model_calls:
                    raise Refusal("tool_call_cap", "this question has made too many tool calls")
                arguments = check_call("question", None, call.name, call.arguments)
            except Refusal as refusal:
                answer.refusals.append(f"{call.name}: {refusal}")
                name, kept = refused_call(call.name, call.arguments)
                await actions.record(
                    {
                        "kind": "refusal",
                        "trigger": "question",
                        "tool": name,
                        "arguments": kept,
                        "reason": f"{refusal.code}: {refusal.reason}"[:1000],
                        "model": planner.name,
                    }
                )
                result: Any = {"error": refusal.code, "reason": refusal.reason}
            else:
                answer.calls.append(f"{call.name} {arguments.model_dump_json(exclude_none=True)}")
                result = await _read(reader, arguments, answer)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    answer.text = f"(no answer: the model made {limits.model_calls} rounds of tool calls without one)"
    return answer


async def _read(reader: OrdersReader, arguments: BaseModel, answer: Answer) -> dict[str, Any]:
    if isinstance(arguments, GetOrder):
        order = await reader.get_order(arguments.id)
        if order is None:
            return {"error": "not_found", "reason": f"order {arguments.id} does not exist"}
        answer.orders[order["id"]] = order
        return {"order": order}
    assert isinstance(arguments, FindOrders)
    older = parse_duration(arguments.older_than) if arguments.older_than else None
    found, truncated = await reader.find_orders(arguments.status, arguments.customer, older, arguments.limit)
    for order in found:
        answer.orders[order["id"]] = order
    return {"orders": found, "truncated": truncated}
