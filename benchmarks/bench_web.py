"""The browser view's cost to a run: throughput with a browser connected, and first paint.

    python benchmarks/bench_web.py                   # 20 000 layered no-op nodes, 5 rounds
    python benchmarks/bench_web.py --nodes 50000 --rounds 3 --no-browser

Issue 15's targets: a run of 20 000 no-op nodes with one browser connected goes at
least 0.8x as fast as the same run without a view; the first paint of a 10 000-node
run takes under 2 s in headless Chromium. Each round runs, alternating in this one
process: the plain run; the run with a view and one script reading its event stream
(httpx, as fast as it can, in this process: its own parsing of every event shares the
run's core, so this is a worst case, not a browser's cost); and, if Debian's
Chromium is there, the run with a view open in a real headless Chromium page (the
page's own rendering runs in the browser's processes, on the other core). Throughput
is nodes per second of wall time from the moment a gate node opens (the view, the
reader or the page all ready and watching) to the run's report; the figure is the
median over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


async def _with_reader(specs: list[dagtrio.NodeSpec]) -> float:
    """A view, and one client reading its server-sent events as they come."""
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
            async with client.stream("GET", base + "/api/events") as response:
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
    assert seen > 0
    return elapsed


class _Browser:
    """A headless Chromium page, driven from one thread of its own (`call`).

    Playwright's synchronous API must be used from the thread that started it, and
    Trio's worker threads are not always the same one.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1)
        self._thread.submit(self._start).result()

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(self._thread.submit(fn, *args).result)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._play = sync_playwright().start()
        self._browser = self._play.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        self.page = self._browser.new_page(viewport={"width": 1400, "height": 900})

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function("() => window.dagtrio && window.dagtrio.snapshots > 0")

    def caught_up(self, nodes: int) -> int:
        """Wait until the page shows the run finished, with every node (it followed to
        the end); how many snapshots it took (1 + the times it fell behind)."""
        self.page.wait_for_function(
            "(n) => window.dagtrio.state.state === 'finished' && window.dagtrio.nodes.size === n",
            arg=nodes,
        )
        return int(self.page.evaluate("() => window.dagtrio.snapshots"))

    def first_paint(self, url: str) -> float:
        self.page.goto(url)
        self.page.wait_for_function("() => window.dagtrio && window.dagtrio.firstPaintMs !== null")
        return float(self.page.evaluate("() => window.dagtrio.firstPaintMs")) / 1000

    def _close(self) -> None:
        self._browser.close()
        self._play.stop()

    async def close(self) -> None:
        await self.call(self._close)
        self._thread.shutdown()


async def _with_browser(
    specs: list[dagtrio.NodeSpec], browser: _Browser, snapshots: list[int]
) -> float:
    gate = trio.Event()
    coordinator = dagtrio.Coordinator(_registry(gate))
    async with coordinator.open_run(_gated(specs)) as run, web.open_view(run) as url:
        await browser.call(browser.open, url)
        elapsed = await _timed(run, gate)
        snapshots.append(await browser.call(browser.caught_up, len(specs) + 1))
    return elapsed


async def _first_paint(n: int, browser: _Browser) -> float:
    """The page of a finished 10 000-node run: the snapshot is the whole graph."""
    gate = trio.Event()
    gate.set()
    coordinator = dagtrio.Coordinator(_registry(gate))
    async with coordinator.open_run(layered(n)) as run:
        await run.wait()
        async with web.open_view(run) as url:
            return await browser.call(browser.first_paint, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paint-nodes", type=int, default=10_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    specs = layered(args.nodes)
    use_browser = not args.no_browser and CHROMIUM.exists()
    times: dict[str, list[float]] = {"plain": [], "view": [], "reader": [], "browser": []}
    paints: list[float] = []
    snapshots: list[int] = []

    async def rounds() -> None:
        browser = _Browser() if use_browser else None
        try:
            for _ in range(args.rounds):
                times["plain"].append(await _plain(specs))
                times["view"].append(await _with_view(specs))
                times["reader"].append(await _with_reader(specs))
                if browser is not None:
                    times["browser"].append(await _with_browser(specs, browser, snapshots))
                    paints.append(await _first_paint(args.paint_nodes, browser))
        finally:
            if browser is not None:
                await browser.close()

    trio.run(rounds)
    plain = statistics.median(times["plain"])
    print(f"{args.nodes} layered no-op nodes, median of {args.rounds} rounds")
    print(f"  no view:                 {args.nodes / plain:>9,.0f} nodes/s  ({plain:.2f} s)")
    for name, label in (
        ("view", "view, nobody connected"),
        ("reader", "view + in-process reader"),
        ("browser", "view + headless Chromium"),
    ):
        if times[name]:
            t = statistics.median(times[name])
            print(
                f"  {label + ':':<24} {args.nodes / t:>9,.0f} nodes/s  ({t:.2f} s)"
                f"  {plain / t:.2f}x"
            )
    if snapshots:
        print(f"  snapshots the page took per run (1 + resyncs): {snapshots}")
    if paints:
        print(
            f"  first paint, {args.paint_nodes} nodes: {statistics.median(paints):.2f} s"
            f" (median; {', '.join(f'{p:.2f}' for p in paints)})"
        )


if __name__ == "__main__":
    main()
