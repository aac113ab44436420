"""A local HTTP server that speaks the Chat Completions protocol (with tool calling) from a
script: each request gets the next scripted reply, and every request is kept for the test
to read. Replies are built with ``tool_reply``, ``text_reply`` or ``failure``; a callable
gets the request's body and returns one of them (for endless scripts)."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

Reply = dict[str, Any]
Script = list[Reply | Callable[[dict[str, Any]], Reply]]
_ids = itertools.count(1)


def tool_reply(*calls: tuple[str, dict[str, Any] | str]) -> Reply:
    """An assistant message calling ``(tool, arguments)`` (arguments as an object or raw text)."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{next(_ids)}",
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for name, args in calls
        ],
    }


def text_reply(text: str) -> Reply:
    return {"role": "assistant", "content": text}


def failure(status: int, message: str = "scripted failure") -> Reply:
    return {"status": status, "error": {"message": message, "type": "server_error"}}


class ChatScript:
    def __init__(self, script: Script, when_done: Reply | None = None) -> None:
        self.script = list(script)
        self.when_done = when_done or text_reply("Nothing more to do.")
        self.requests: list[dict[str, Any]] = []
        self.url = ""

    def tools_offered(self, n: int) -> list[str]:
        return [tool["function"]["name"] for tool in self.requests[n].get("tools", [])]

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        step = self.script.pop(0) if self.script else self.when_done
        reply = step(body) if callable(step) else step
        if "status" in reply:
            return web.json_response({"error": reply["error"]}, status=reply["status"])
        finish = "tool_calls" if reply.get("tool_calls") else "stop"
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "finish_reason": finish, "message": reply}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[ChatScript]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        try:
            yield self
        finally:
            await runner.cleanup()
