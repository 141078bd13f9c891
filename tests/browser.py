"""A headless Chromium for the view's tests: Debian's, driven by Playwright.

Playwright's synchronous API must be called from the thread that started it, so the
browser lives in one thread of its own and `Browser.call` runs each step there while
the test's Trio loop goes on serving the page. Never a downloaded browser: the
executable is the system's (``/usr/bin/chromium``, from ``apt-get install chromium``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import trio

#: where screenshots of the page are kept after a test (CI keeps build/ as artifacts)
ARTIFACTS = Path(os.environ.get("DAGTRIO_ARTIFACTS", Path(__file__).parent.parent / "build"))


def chromium_path() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class Browser:
    """One Chromium, one page at a time, errors of the page collected."""

    def __init__(self, executable: str) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chromium")
        self._thread.submit(self._start, executable).result()
        self.page: Any = None
        self.problems: list[str] = []

    def _start(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._play = sync_playwright().start()
        self._chromium = self._play.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the browser's thread; the Trio loop goes on meanwhile."""
        return await trio.to_thread.run_sync(self._thread.submit(fn, *args).result)

    async def open(self, url: str) -> Any:
        """A fresh page at ``url``, recording console errors and page errors."""
        return await self.call(self._open, url)

    def _open(self, url: str) -> Any:
        if self.page is not None:
            self.page.context.close()
        context = self._chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)  # a hang guard, not a measurement
        self.problems = []
        page.on(
            "console",
            lambda message: message.type == "error" and self.problems.append(message.text),
        )
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.goto(url)
        self.page = page
        return page

    async def screenshot(self, name: str) -> Path:
        path = ARTIFACTS / name

        def take() -> None:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(path), full_page=True)

        await self.call(take)
        return path

    def close(self) -> None:
        def stop() -> None:
            if self.page is not None:
                self.page.context.close()
            self._chromium.close()
            self._play.stop()

        self._thread.submit(stop).result()
        self._thread.shutdown()
