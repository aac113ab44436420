"""Who decides: the ``Planner`` seam, and the offline planner that needs no model.

A planner gets the conversation so far (Chat Completions messages), the tools it may call,
and the trigger that started it (None for a question), and replies with text, tool calls,
or both. ``ChatModel`` (``agent.chat_model``) asks any OpenAI-compatible endpoint; the
``OfflinePlanner`` makes the same calls from templates, deterministically, so the agent
works out of the box and offline. It cannot answer questions: those need a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from orders_live.agent.triggers import Trigger

OFFLINE = "offline-planner"


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True, slots=True)
class Reply:
    content: str | None
    calls: list[ToolCall] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.calls
            ]
        return message


class ModelFailed(Exception):
    """The model did not answer usefully, after its retries (the reason is the text)."""


class NeedsModel(Exception):
    """The offline planner was asked something only a model can answer."""


class Planner(Protocol):
    @property
    def name(self) -> str: ...

    async def reply(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], trigger: Trigger | None
    ) -> Reply: ...

    async def close(self) -> None: ...


class OfflinePlanner:
    """One templated tool call per trigger, then done."""

    name = OFFLINE

    async def reply(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], trigger: Trigger | None
    ) -> Reply:
        if trigger is None:
            raise NeedsModel(
                "questions need a model: give --model (and --base-url for a local server such as"
                " Ollama, vLLM or llama.cpp; the API key comes from OPENAI_API_KEY)"
            )
        if any(m.get("role") == "tool" for m in messages):
            return Reply("Done.")
        order = trigger.order
        who, what, number = order["customer_name"], order["product_name"], order["id"]
        if trigger.kind == "pending_too_long":
            tool = "draft_follow_up"
            text = (
                f"Hello {who}, your order #{number} ({what}) has been pending since"
                f" {order['updated_at'][:10]}. We are sorry for the wait: we are looking into it"
                " and will write again as soon as it moves."
            )
        else:
            tool = "notify_customer"
            text = f"Hello {who}, good news: your order #{number} ({what}) has shipped."
        arguments = json.dumps({"order_id": number, "message": text})
        return Reply(None, [ToolCall(f"offline-{trigger.kind}-{number}-{trigger.version}", tool, arguments)])

    async def close(self) -> None:
        return None
