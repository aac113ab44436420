"""``orders-live agent`` and ``orders-live ask``: their options, the planner they pick (a model
when ``--model`` is given, else the offline planner), and how they run."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable

import aiohttp

from orders_live.agent.agent import Agent, AgentOptions
from orders_live.agent.ask import ask
from orders_live.agent.guardrails import Limits
from orders_live.agent.metrics import AgentMetrics
from orders_live.agent.planner import ModelFailed, NeedsModel, OfflinePlanner, Planner
from orders_live.agent.service_api import ActionLog, OrdersReader
from orders_live.agent.tools import parse_duration
from orders_live.cli.interruption import run_command, until_stopped
from orders_live.client.display import shown
from orders_live.client.tokens import token_source

log = logging.getLogger("orders_live.agent")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _window(text: str) -> float:
    return 0.0 if text == "0" else _duration(text)


def _model_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--model",
        default=os.environ.get("ORDERS_LIVE_AGENT_MODEL"),
        help="model at an OpenAI-compatible endpoint (default $ORDERS_LIVE_AGENT_MODEL; none: the offline planner)",
    )
    command.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL"),
        help="Chat Completions endpoint, as http://127.0.0.1:11434/v1 (Ollama); default $OPENAI_BASE_URL, else OpenAI",
    )
    command.add_argument("--model-timeout", type=float, default=30.0, help="seconds per model call (default 30)")
    command.add_argument(
        "--max-tokens", type=_positive, default=1_024, help="max_tokens of each model call's reply (default 1024)"
    )


def add_agent_parsers(client_command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    agent = client_command("agent", "act on the orders stream through tools, within guardrails")
    _model_options(agent)
    agent.add_argument(
        "--pending-after", type=_duration, default=86_400.0, help="pending this long after its last change: 1d"
    )
    agent.add_argument(
        "--shipped-lookback",
        type=_duration,
        default=3_600.0,
        help="at start, shipped orders changed this recently count as just shipped (default 1h)",
    )
    agent.add_argument("--dry-run", action="store_true", help="record decisions, take no action")
    agent.add_argument("--metrics-port", type=int, help="serve the agent's /metrics on this port")
    agent.add_argument("--max-model-calls", type=int, default=4, help="model calls per trigger (default 4)")
    agent.add_argument("--max-tool-calls", type=int, default=4, help="tool calls per trigger (default 4)")
    agent.add_argument("--model-calls-per-minute", type=int, default=30, help="for the whole agent (default 30)")
    agent.add_argument("--tool-calls-per-minute", type=int, default=60, help="for the whole agent (default 60)")
    agent.add_argument(
        "--model-calls-per-hour",
        type=_positive,
        default=500,
        help="budget for the whole agent; past it triggers are recorded as skipped (default 500)",
    )
    agent.add_argument(
        "--queue-size",
        type=_positive,
        default=1_000,
        help="triggers waiting at most; when full the oldest is dropped and counted (default 1000)",
    )
    agent.add_argument(
        "--trigger-window",
        type=_window,
        default=3_600.0,
        help="one trigger per order and kind within this long; more are suppressed and counted (default 1h; 0: off)",
    )
    question = client_command("ask", "answer one question about the orders (needs a model)")
    question.add_argument("question")
    _model_options(question)


def _planner(args: argparse.Namespace) -> Planner:
    if not args.model:
        return OfflinePlanner()
    from orders_live.agent.chat_model import ChatModel  # the openai client, only when a model is used

    return ChatModel(
        args.model,
        args.base_url,
        os.environ.get("OPENAI_API_KEY"),
        timeout=args.model_timeout,
        max_tokens=args.max_tokens,
    )


def run_agent_command(args: argparse.Namespace) -> int:
    """Until the live view ends for good, or Ctrl-C / SIGTERM: then it stops what it runs, says
    so in one line, and exits 0 (``cli.interruption``)."""
    limits = Limits(
        args.max_model_calls,
        args.max_tool_calls,
        args.model_calls_per_minute,
        args.tool_calls_per_minute,
        args.model_calls_per_hour,
    )
    options = AgentOptions(
        args.pending_after,
        args.shipped_lookback,
        args.dry_run,
        limits,
        queue_capacity=args.queue_size,
        trigger_window=args.trigger_window,
    )
    run_command(lambda stop: _agent(args, options, stop), asyncio.run, "orders-live agent stopped")
    return 0


async def _agent(args: argparse.Namespace, options: AgentOptions, stop: asyncio.Event) -> None:
    planner = _planner(args)
    metrics = AgentMetrics()
    agent = Agent(args.url, planner, options, token=token_source(args.token, args.token_file), metrics=metrics)
    try:
        runner = await metrics.serve("127.0.0.1", args.metrics_port) if args.metrics_port is not None else None
    except BaseException:
        await planner.close()
        raise
    log.info(
        "agent following %s with %s%s; pending after %.0fs",
        args.url,
        planner.name,
        " (dry run)" if options.dry_run else "",
        options.pending_after,
    )
    try:
        await until_stopped(agent.run(), stop, "agent")
    finally:
        await planner.close()
        if runner is not None:
            await runner.cleanup()


def run_ask_command(args: argparse.Namespace) -> int:
    return asyncio.run(_ask(args))


async def _ask(args: argparse.Namespace) -> int:
    planner = _planner(args)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            token = token_source(args.token, args.token_file)
            reader, actions = OrdersReader(args.url, session, token), ActionLog(args.url, session, token)
            answer = await ask(args.question, planner, reader, actions)
    except NeedsModel as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ModelFailed as exc:
        print(f"the model failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await planner.close()
    print(answer.text)
    if answer.orders:
        print(f"\norders used ({len(answer.orders)}):")
        for order in sorted(answer.orders.values(), key=lambda o: o["id"]):
            print(json.dumps(order, sort_keys=True))
    for refusal in answer.refusals:
        print(f"refused: {shown(str(refusal))}", file=sys.stderr)
    return 0
