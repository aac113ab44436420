"""Debian's chromium, as the browser tests launch it (``playwright install`` cannot download
browsers here): where it is, its flags, the viewports, where screenshots go. The ``browser``
fixture that launches it is in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DIST = ROOT / "frontend" / "dist"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def skip_without_a_dashboard() -> None:
    """Skip the calling test module without Debian's chromium or a built dashboard."""
    if not CHROMIUM.is_file():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's (apt-get install chromium) to run the dashboard tests",
            allow_module_level=True,
        )
    if not (DIST / "index.html").is_file():
        pytest.skip(
            f"the dashboard is not built ({DIST / 'index.html'} is missing): run scripts/build-frontend.sh",
            allow_module_level=True,
        )
