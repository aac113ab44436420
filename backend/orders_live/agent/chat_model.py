"""A planner that asks a model: any OpenAI-compatible Chat Completions endpoint with tool
calling (OpenAI, or a local server such as Ollama, vLLM or llama.cpp), through the official
``openai`` client.

Failures that may pass (no connection, a timeout, 429, 5xx) are retried with growing,
capped, jittered delays (``runtime.backoff``; the client's own retries are off so that there
is one policy); the rest fail at once. Either way the caller gets ``ModelFailed`` with the
reason, records it, and goes on: a model error never stops the agent.

Every call carries ``max_tokens`` (``--max-tokens``), so that no reply costs more than that.
A reply cut short by it is an ordinary reply: a cut tool call's arguments are not valid JSON,
and the guardrails refuse them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import openai

from orders_live.agent.planner import ModelFailed, Reply, ToolCall
from orders_live.agent.triggers import Trigger
from orders_live.runtime.backoff import Backoff

log = logging.getLogger(__name__)

RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)


class ChatModel:
    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        retry_first: float = 0.5,
        retry_cap: float = 8.0,
        max_tokens: int = 1_024,
    ) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self.model, self.max_tokens = model, max_tokens
        self.retries, self.retry_first, self.retry_cap = retries, retry_first, retry_cap
        # A local server needs no key, but the client insists on one.
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=0
        )

    @property
    def name(self) -> str:
        return self.model

    async def reply(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], trigger: Trigger | None
    ) -> Reply:
        backoff = Backoff(f"model {self.model}", log, first=self.retry_first, cap=self.retry_cap, quiet_failures=1)
        while True:
            try:
                return await self._ask(messages, tools)
            except asyncio.CancelledError:
                raise
            except RETRYABLE as exc:
                if backoff.failures >= self.retries:
                    raise ModelFailed(f"{type(exc).__name__}: {exc} (after {backoff.failures + 1} attempts)") from exc
                await backoff.wait(exc)
            except openai.OpenAIError as exc:
                raise ModelFailed(f"{type(exc).__name__}: {exc}") from exc

    async def _ask(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        extra: dict[str, Any] = {"tools": tools, "tool_choice": "auto"} if tools else {}
        response = await self.client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]  # plain dicts of the documented shape
            max_tokens=self.max_tokens,
            **extra,
        )
        if not response.choices:
            raise ModelFailed("the model's reply has no choices")
        message = response.choices[0].message
        calls = [
            ToolCall(call.id, call.function.name, call.function.arguments or "")
            for call in message.tool_calls or []
            if call.type == "function"
        ]
        return Reply(message.content, calls)

    async def close(self) -> None:
        await self.client.close()
