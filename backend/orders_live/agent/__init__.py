"""The agent: one more client of the service that acts on the orders stream through tools,
within guardrails (docs/agent.md). ``triggers`` decide when, a ``planner`` (a model, or the
offline planner) what, ``guardrails`` whether, and the service's action log records each step."""

from orders_live.agent.agent import Agent, AgentOptions
from orders_live.agent.ask import Answer, ask
from orders_live.agent.guardrails import Limits
from orders_live.agent.planner import OfflinePlanner

__all__ = ["Agent", "AgentOptions", "Answer", "Limits", "OfflinePlanner", "ask"]
