"""``GET /live.html``: one static page that follows the orders over Server-Sent Events.

The page (``static/live.html``, shipped as package data) has its script and style inline and
loads nothing from anywhere else. Its Content-Security-Policy allows exactly those inline
blocks, by their SHA-256 (computed here from the file, so it never goes stale), requests to
this origin only, and nothing more: no other script, style, frame, form target or base URL.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from importlib import resources

from aiohttp import web

log = logging.getLogger(__name__)

PAGE = "static/live.html"
_INLINE = re.compile(r"<(script|style)\b[^>]*>(.*?)</\1\s*>", re.DOTALL | re.IGNORECASE)


def content_security_policy(html: str) -> str:
    """The policy for ``html``: its inline ``<script>`` and ``<style>`` blocks by hash (a
    browser hashes the text exactly as parsed, which is the file's text with ``\\n`` line ends)."""
    allowed: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        allowed[tag.lower()].append(f"'sha256-{digest}'")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(allowed["script"]) or "'none'"),
            "style-src " + (" ".join(allowed["style"]) or "'none'"),
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


class LivePage:
    def __init__(self, html: str | None = None) -> None:
        """``html``: the page to serve (tests); else the packaged ``static/live.html``."""
        if html is None:
            try:
                # Text mode: line ends become "\n", as the browser sees them when it hashes.
                html = resources.files("orders_live.transports.http").joinpath(PAGE).read_text(encoding="utf-8")
            except OSError as exc:
                log.warning("no live page (%s): /live.html is not served", exc)
        self.body = html.encode() if html is not None else None
        self.headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-cache",
            "Content-Security-Policy": content_security_policy(html or ""),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if self.body is not None:
            self.headers["ETag"] = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/live.html", self.page)] if self.body is not None else []

    async def page(self, request: web.Request) -> web.Response:
        if self.headers["ETag"] in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers={k: v for k, v in self.headers.items() if k != "Content-Type"})
        return web.Response(body=self.body, headers=self.headers)
