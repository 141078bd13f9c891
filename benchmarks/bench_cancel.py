"""How fast does cancellation really stop work?

Starts N actions that would run forever, then measures the wall time from the call
(``CancelBranch`` submitted from outside, ``run.cancel()``, ``run.shutdown(grace=0)``)
until the last action has left its ``finally`` block: the moment the work has really
stopped, not the moment a status flag flipped. Run it as::

    python benchmarks/bench_cancel.py [--running N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable

import trio

from dagtrio import ActionRegistry, CancelBranch, Coordinator, NodeCtx, NodeSpec, NodeStatus, Run


def make_registry(stopped: list[float], started: trio.Event, expected: int) -> ActionRegistry:
    registry = ActionRegistry()
    running = {"n": 0}

    @registry.action()
    async def forever(ctx: NodeCtx) -> None:
        running["n"] += 1
        if running["n"] == expected:
            started.set()
        try:
            await trio.sleep_forever()
        finally:
            stopped.append(time.perf_counter())

    return registry


async def measure(kind: str, count: int) -> float:
    """Seconds from the cancel call to the last action's exit, for ``count`` actions."""
    stopped: list[float] = []
    started = trio.Event()
    registry = make_registry(stopped, started, count)
    specs = [NodeSpec("forever", id=f"n{i}", branch="main/work") for i in range(count)]
    coordinator = Coordinator(registry, max_parallel=count)
    actions: dict[str, Callable[[Run], Awaitable[None]]] = {
        "CancelBranch": lambda run: run.submit(CancelBranch("main/work")),
        "run.cancel()": _cancel,
        "shutdown(grace=0)": lambda run: run.shutdown(grace=0),
    }
    async with coordinator.open_run(specs) as run:
        await started.wait()
        begin = time.perf_counter()
        await actions[kind](run)
    assert len(stopped) == count
    assert all(r.status is NodeStatus.CANCELLED for r in run.report().nodes.values())
    return max(stopped) - begin


async def _cancel(run: Run) -> None:
    run.cancel()
    await trio.lowlevel.checkpoint()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--running", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'how':<20}{'running':>9}{'median':>12}{'worst':>12}{'per action':>14}")
    for kind in ("CancelBranch", "run.cancel()", "shutdown(grace=0)"):
        for count in args.running:
            times = [trio.run(measure, kind, count) for _ in range(args.repeats)]
            median = statistics.median(times)
            print(
                f"{kind:<20}{count:>9}{median * 1e3:>10.2f}ms{max(times) * 1e3:>10.2f}ms"
                f"{median / count * 1e6:>12.2f}us"
            )


if __name__ == "__main__":
    main()
