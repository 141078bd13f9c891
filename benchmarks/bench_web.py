"""The browser view's cost to a run: throughput with a browser connected, and first paint.

    python benchmarks/bench_web.py                   # 20 000 layered no-op nodes, 5 rounds
    python benchmarks/bench_web.py --nodes 50000 --rounds 3 --no-browser

Issue 15's targets: a run of 20 000 no-op nodes with one browser connected goes at
least 0.8x as fast as the same run without a view; the first paint of a 10 000-node
run takes under 2 s in headless Chromium. Each round runs, in this one process and
each first in turn: the plain run; the run with a view nobody opened; with a view and
one script reading every event (``/api/events``) as fast as it can; with one script
reading the page's stream (``/api/updates``); both scripts in this process (httpx:
their own parsing shares the run's core, so these are worst cases, not a browser's
cost); and, if Debian's Chromium is there, with the view open in a real headless
Chromium page, driven from a child process like any user's browser (the page's work
runs in the browser's processes). Throughput is nodes per second of wall time from
the moment a gate node opens (the view, the reader or the page all ready and
watching) to the run's report; a ratio is the median over rounds of each round's
ratio to that round's plain run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

import dagtrio
from dagtrio import web
from dagtrio.bench.generators import layered

CHROMIUM = Path("/usr/bin/chromium")


def _registry(gate: trio.Event) -> dagtrio.ActionRegistry:
    registry = dagtrio.ActionRegistry()

    @registry.action()
    async def noop(ctx: dagtrio.NodeCtx) -> None:
        return None

    @registry.action(name="gate")
    async def wait_for_gate(ctx: dagtrio.NodeCtx) -> None:
        await gate.wait()

    return registry


def _gated(specs: list[dagtrio.NodeSpec]) -> list[dagtrio.NodeSpec]:
    """``specs`` behind one ``gate`` node: every variant times the same work, from the
    moment the gate opens (the view, the page, the reader all ready) to the report."""
    gated = [attrs.evolve(spec, deps=spec.deps or ("gate",)) for spec in specs]
    return [dagtrio.NodeSpec("gate", id="gate"), *gated]


async def _timed(run: dagtrio.Run, gate: trio.Event) -> float:
    gate.set()
    started = time.perf_counter()
    report = await run.wait()
    assert report.success
    return time.perf_counter() - started


async def _plain(specs: list[dagtrio.NodeSpec]) -> float:
    gate = trio.Event()
    async with dagtrio.Coordinator(_registry(gate)).open_run(_gated(specs)) as run:
        return await _timed(run, gate)


async def _with_view(specs: list[dagtrio.NodeSpec]) -> float:
    """A view that nobody has opened: what serving one costs by itself."""
    gate = trio.Event()
    coordinator = dagtrio.Coordinator(_registry(gate))
    async with coordinator.open_run(_gated(specs)) as run, web.open_view(run):
        return await _timed(run, gate)


async def _with_script(specs: list[dagtrio.NodeSpec], path: str) -> float:
    """A view, and one client in this process reading a stream of it (``path``) as it
    comes: a worst case, as its own parsing shares the run's core."""
    gate = trio.Event()
    ready = trio.Event()
    coordinator = dagtrio.Coordinator(_registry(gate))
    seen = 0
    async with (
        coordinator.open_run(_gated(specs)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=None) as client,
    ):
        base = url.partition("/?")[0]

        async def read() -> None:
            nonlocal seen
            async with client.stream("GET", base + path) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        seen += 1
                    if line == "event: snapshot":
                        ready.set()
                    if line == "event: end":
                        return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await ready.wait()
            elapsed = await _timed(run, gate)
    assert seen > 1  # more than the snapshot
    return elapsed


class _Page:
    """A headless Chromium page, driven by Playwright in this process's child.

    Not from a thread of this process: Playwright's client handles every message the
    browser sends (each chunk of the event stream among them) while holding this
    process's interpreter lock, which a user's own browser never takes from the run.
    Measured that way, the run went at 0.77x instead of the 0.92x it goes at beside a
    Chromium of its own; the child keeps the driver as far from the run as a user's
    browser is. It reads one command per line on stdin and answers one line.
    """

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._lines = _Lines(process.stdout)

    @classmethod
    async def start(cls) -> _Page:
        process = await trio.lowlevel.open_process(
            [sys.executable, __file__, "--page-child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        page = cls(process)
        assert await page._line() == "started"
        return page

    async def _ask(self, *words: object) -> str:
        assert self._process.stdin is not None
        await self._process.stdin.send_all((" ".join(map(str, words)) + "\n").encode())
        return await self._line()

    async def _line(self) -> str:
        line = await self._lines.next()
        if line.startswith("error "):
            raise RuntimeError(f"the page's driver failed: {line[6:]}")
        return line

    async def open(self, url: str) -> None:
        assert await self._ask("open", url) == "ready"

    async def caught_up(self, nodes: int) -> int:
        """Wait until the page shows the run finished, with every node (it followed to
        the end); how many snapshots it took (1 + the times it fell behind)."""
        return int(await self._ask("caught_up", nodes))

    async def first_paint(self, url: str) -> float:
        return float(await self._ask("paint", url))

    async def close(self) -> None:
        await self._ask("quit")
        await self._process.wait()


class _Lines:
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                raise RuntimeError("the page's driver exited")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


def _page_child() -> None:
    """The child's side of `_Page`: Playwright's synchronous API, one command a line."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        print("started", flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            try:
                if command == "open":
                    page.goto(arg)
                    page.wait_for_function("() => window.dagtrio && window.dagtrio.snapshots > 0")
                    answer = "ready"
                elif command == "caught_up":
                    page.wait_for_function(
                        "(n) => window.dagtrio.state.state === 'finished'"
                        " && window.dagtrio.nodes.size === n",
                        arg=int(arg),
                    )
                    answer = str(page.evaluate("() => window.dagtrio.snapshots"))
                elif command == "paint":
                    page.goto(arg)
                    page.wait_for_function(
                        "() => window.dagtrio && window.dagtrio.firstPaintMs !== null"
                    )
                    answer = str(float(page.evaluate("() => window.dagtrio.firstPaintMs")) / 1000)
                else:
                    print("bye", flush=True)
                    break
            except Exception as exc:  # told to the parent, which raises it
                answer = f"error {type(exc).__name__}: {exc}".replace("\n", " ")
            print(answer, flush=True)
        browser.close()


async def _with_browser(specs: list[dagtrio.NodeSpec], page: _Page, snapshots: list[int]) -> float:
    gate = trio.Event()
    coordinator = dagtrio.Coordinator(_registry(gate))
    async with coordinator.open_run(_gated(specs)) as run, web.open_view(run) as url:
        await page.open(url)
        elapsed = await _timed(run, gate)
        snapshots.append(await page.caught_up(len(specs) + 1))
    return elapsed


async def _first_paint(n: int, page: _Page) -> float:
    """The page of a finished 10 000-node run: the snapshot is the whole graph."""
    gate = trio.Event()
    gate.set()
    coordinator = dagtrio.Coordinator(_registry(gate))
    async with coordinator.open_run(layered(n)) as run:
        await run.wait()
        async with web.open_view(run) as url:
            return await page.first_paint(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paint-nodes", type=int, default=10_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    specs = layered(args.nodes)
    use_browser = not args.no_browser and CHROMIUM.exists()
    times: dict[str, list[float]] = {
        "plain": [],
        "view": [],
        "reader": [],
        "page": [],
        "browser": [],
    }
    paints: list[float] = []
    snapshots: list[int] = []

    async def rounds() -> None:
        browser = await _Page.start() if use_browser else None
        try:
            variants: list[tuple[str, Callable[[], Awaitable[float]]]] = [
                ("plain", lambda: _plain(specs)),
                ("view", lambda: _with_view(specs)),
                ("reader", lambda: _with_script(specs, "/api/events")),
                ("page", lambda: _with_script(specs, "/api/updates")),
            ]
            if browser is not None:
                variants.append(("browser", lambda: _with_browser(specs, browser, snapshots)))
            for round_ in range(args.rounds):
                # Each variant first in turn, with the collector's leftovers of the last
                # one collected before it starts: no variant pays for another's garbage.
                turn = round_ % len(variants)
                for name, variant in variants[turn:] + variants[:turn]:
                    gc.collect()
                    times[name].append(await variant())
                if browser is not None:
                    paints.append(await _first_paint(args.paint_nodes, browser))
        finally:
            if browser is not None:
                await browser.close()

    trio.run(rounds)
    plain = statistics.median(times["plain"])
    print(f"{args.nodes} layered no-op nodes, median of {args.rounds} rounds")
    print(f"  {'no view:':<30} {args.nodes / plain:>9,.0f} nodes/s  ({plain:.2f} s)")
    for name, label in (
        ("view", "view, nobody connected"),
        ("reader", "view + script on /api/events"),
        ("page", "view + script on /api/updates"),
        ("browser", "view + headless Chromium"),
    ):
        if times[name]:
            t = statistics.median(times[name])
            # Each round's ratio to the plain run of the same round, then their median:
            # a machine that slows down for a while slows both alike.
            ratios = [p / v for p, v in zip(times["plain"], times[name], strict=True)]
            print(
                f"  {label + ':':<30} {args.nodes / t:>9,.0f} nodes/s  ({t:.2f} s)"
                f"  {statistics.median(ratios):.2f}x"
                f" (rounds: {min(ratios):.2f}x to {max(ratios):.2f}x)"
            )
    if snapshots:
        print(f"  snapshots the page took per run (1 + resyncs): {snapshots}")
    if paints:
        print(
            f"  first paint, {args.paint_nodes} nodes: {statistics.median(paints):.2f} s"
            f" (median; {', '.join(f'{p:.2f}' for p in paints)})"
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--page-child"]:
        _page_child()
    else:
        main()
