"""The dashboard in headless Chromium, for ``orders-live bench --dashboard``: Debian's
``/usr/bin/chromium`` under Playwright (``playwright install`` cannot download browsers here),
Chromium's main-thread counters through CDP, and a ``MutationObserver`` that records when each
stamped product name first appears in the table's body.

What "on screen" means here: the moment the row's text is in the table's DOM (the observer's
callback, right after React's commit and before the frame is painted).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orders_live.bench.dashboard_stats import STAMP, metrics

CHROMIUM = Path(os.environ.get("ORDERS_LIVE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
LIVE_WITHIN_MS = 30_000

# Records, per sequence number, when its stamp first showed up inside a <tbody>.
OBSERVER = """(stamp) => {
  const seen = new Map();
  const pattern = new RegExp(stamp + "(\\\\d+)", "g");
  const scan = (text, at) => {
    if (!text || !text.includes(stamp)) return;
    for (const match of text.matchAll(pattern)) {
      const n = Number(match[1]);
      if (!seen.has(n)) seen.set(n, at);
    }
  };
  const inBody = (node) => {
    const element = node instanceof Element ? node : node.parentElement;
    return element !== null && element.closest("tbody") !== null;
  };
  new MutationObserver((records) => {
    const at = performance.timeOrigin + performance.now();
    for (const record of records) {
      if (!inBody(record.target)) continue;
      if (record.type === "characterData") scan(record.target.data, at);
      else for (const node of record.addedNodes) scan(node.textContent, at);
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
  window.__dashbench = {
    has: (n) => seen.has(n),
    since: (first) => Object.fromEntries([...seen].filter(([n]) => n >= first)),
  };
}"""

# No animation that ends is running (an infinite one, a status pulse, never ends).
STILL = """() => document.getAnimations().every(
  (a) => a.playState !== "running" || a.effect === null || a.effect.getComputedTiming().endTime === Infinity
)"""


class MissingBrowser(RuntimeError):
    """Chromium, Playwright or the built dashboard is not there: the message says what to do."""


def check_prerequisites(frontend_dir: Path) -> None:
    if not CHROMIUM.is_file():
        raise MissingBrowser(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set ORDERS_LIVE_CHROMIUM)")
    if not (frontend_dir / "index.html").is_file():
        raise MissingBrowser(
            f"the dashboard is not built ({frontend_dir / 'index.html'} is missing): cd frontend && npm run build"
        )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        raise MissingBrowser("the dashboard bench needs Playwright: pip install -e 'backend[dev]'") from None


class DashboardPage:
    """One browser with one dashboard tab; ``open`` waits until the feed is live and the table shows
    ``rows`` rows (or as many as the page renders)."""

    def __init__(self) -> None:
        self._playwright: Any = None
        self._browser: Any = None
        self.page: Any = None
        self._cdp: Any = None
        self.errors: list[str] = []

    async def open(self, url: str) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await self._browser.new_context(viewport=VIEWPORT)
        self.page = await context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        await self.page.goto(url)
        phase = self.page.get_by_test_id("connection").locator('[data-phase="live"]')
        await phase.wait_for(timeout=LIVE_WITHIN_MS)
        await self.page.locator("tbody tr[data-order-id]").first.wait_for(timeout=LIVE_WITHIN_MS)
        await self.page.evaluate(OBSERVER, STAMP)
        self._cdp = await context.new_cdp_session(self.page)
        await self._cdp.send("Performance.enable")

    async def rendered_rows(self) -> int:
        return int(await self.page.locator("tbody tr[data-order-id]").count())

    async def counters(self) -> dict[str, float]:
        """The main thread's cumulative seconds (``TaskDuration``, ``ScriptDuration``, …)."""
        return metrics(await self._cdp.send("Performance.getMetrics"))

    async def seen_since(self, first: int) -> dict[int, float]:
        """Sequence number → epoch ms it appeared, for every number from ``first`` on."""
        found = await self.page.evaluate("(first) => window.__dashbench.since(first)", first)
        return {int(n): float(at) for n, at in found.items()}

    async def until_seen(self, numbers: list[int], within_ms: float) -> bool:
        """Wait (in the page, on each frame) until every one of ``numbers`` has been seen; False on
        time-out."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            await self.page.wait_for_function(
                "(numbers) => numbers.every((n) => window.__dashbench.has(n))",
                arg=numbers,
                timeout=within_ms,
                polling="raf",
            )
        except PlaywrightTimeout:
            return False
        return True

    async def until_still(self, within_ms: float) -> bool:
        """Wait until no animation that ends runs in the page (``document.getAnimations()``: CSS
        animations and transitions, and the Web Animations API's); False on time-out."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            await self.page.wait_for_function(STILL, timeout=within_ms)
        except PlaywrightTimeout:
            return False
        return True

    async def close(self) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
