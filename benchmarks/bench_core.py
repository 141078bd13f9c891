"""How much does dagtrio cost per node? No-op throughput against a minimal Trio scheduler.

    python benchmarks/bench_core.py [--nodes N] [--width W] [--max-parallel P]
                                    [--repeats R] [--hooks H] [--seed S]

Both runners execute the same seeded ``layered`` DAG: layers of ``W`` nodes, each node
depending on 1-3 random nodes of the layer before. Every action is a no-op that yields
to Trio once, so the figures measure scheduling overhead only.

- ``trio-minimal``: the smallest correct Trio DAG scheduler (indegree counters, a ready
  deque, at most ``P`` worker tasks, completions on a bounded memory channel to one
  loop). It is the floor: no events, hooks, retries, branches or reports.
- ``dagtrio``: ``Coordinator(registry, hooks=[pass-through] * H, max_parallel=P)``.

Each runner is checked for correctness once before it is timed. Specs and graphs are
built outside the timed region; each timing covers one whole run inside ``trio.run``.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import trio

import dagtrio

#: deps[i] lists the nodes node ``i`` depends on; every dep has a smaller index
Graph = list[list[int]]


def layered_dag(nodes: int, width: int, seed: int) -> Graph:
    """Layers of ``width`` nodes; each node after the first layer has 1-3 deps in the last."""
    rng = random.Random(seed)
    deps: Graph = []
    for i in range(nodes):
        layer_start = i - i % width
        if layer_start == 0:
            deps.append([])
            continue
        previous = range(layer_start - width, layer_start)
        deps.append(sorted(rng.sample(previous, rng.randint(1, 3))))
    return deps


# ---------------------------------------------------------------------- trio-minimal


async def noop() -> None:
    await trio.lowlevel.checkpoint()


async def run_minimal(
    deps: Graph, max_parallel: int, action: Callable[[int], Awaitable[None]]
) -> None:
    """Run ``action(node)`` for every node of ``deps``, after its deps, ``max_parallel`` at most."""
    waiting = [len(node_deps) for node_deps in deps]
    dependents: Graph = [[] for _ in deps]
    for node, node_deps in enumerate(deps):
        for dep in node_deps:
            dependents[dep].append(node)
    ready = deque(node for node, count in enumerate(waiting) if count == 0)
    # Capacity max_parallel: at most that many workers exist, so a worker never waits
    # to report, and the loop below never waits on anything but this channel.
    done_send, done_receive = trio.open_memory_channel[int](max_parallel)

    async def worker(node: int) -> None:
        await action(node)
        await done_send.send(node)

    async with trio.open_nursery() as nursery:
        running = 0
        remaining = len(deps)
        while remaining:
            while ready and running < max_parallel:
                nursery.start_soon(worker, ready.popleft())
                running += 1
            if not running:
                raise ValueError("the graph has a cycle: nothing is ready or running")
            node = await done_receive.receive()
            running -= 1
            remaining -= 1
            for dependent in dependents[node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)


def check_minimal(deps: Graph, max_parallel: int) -> None:
    """Run once with bookkeeping: every node exactly once, after its deps, within the limit."""
    started: list[int] = []
    finished: set[int] = set()
    running = peak = 0

    async def traced(node: int) -> None:
        nonlocal running, peak
        missing = [dep for dep in deps[node] if dep not in finished]
        if missing:
            raise AssertionError(f"node {node} started before its deps {missing} finished")
        started.append(node)
        running += 1
        peak = max(peak, running)
        await noop()
        running -= 1
        finished.add(node)

    trio.run(run_minimal, deps, max_parallel, traced)
    if sorted(started) != list(range(len(deps))):
        raise AssertionError("trio-minimal did not run every node exactly once")
    if peak > max_parallel:
        raise AssertionError(f"trio-minimal ran {peak} actions at once (> {max_parallel})")


def time_minimal(deps: Graph, max_parallel: int) -> float:
    async def timed() -> float:
        start = time.perf_counter()
        await run_minimal(deps, max_parallel, lambda node: noop())
        return time.perf_counter() - start

    return trio.run(timed)


# ---------------------------------------------------------------------------- dagtrio


class PassThrough(dagtrio.EventHook):
    """Sees every event and answers nothing: the cost of the hook pipeline alone."""

    async def handle(self, ctx: dagtrio.HookContext, event: dagtrio.ExecutionEvent) -> None:
        return None


def make_registry() -> dagtrio.ActionRegistry:
    registry = dagtrio.ActionRegistry()

    @registry.action("noop")
    async def _noop(ctx: dagtrio.NodeCtx) -> None:
        await trio.lowlevel.checkpoint()

    return registry


def dagtrio_specs(deps: Graph) -> list[dagtrio.NodeSpec]:
    return [
        dagtrio.NodeSpec("noop", id=f"n{node}", deps=[f"n{dep}" for dep in node_deps])
        for node, node_deps in enumerate(deps)
    ]


def make_coordinator(hooks: int, max_parallel: int) -> dagtrio.Coordinator:
    return dagtrio.Coordinator(
        make_registry(), hooks=[PassThrough() for _ in range(hooks)], max_parallel=max_parallel
    )


def check_dagtrio(
    deps: Graph, specs: Sequence[dagtrio.NodeSpec], hooks: int, max_parallel: int
) -> None:
    """Run once and check the report: all nodes succeeded, each after its deps finished."""
    report = trio.run(make_coordinator(hooks, max_parallel).run, specs)
    if not report.success or len(report.nodes) != len(deps):
        raise AssertionError(f"dagtrio run failed: {report.counts()} ({report.error})")
    for spec in specs:
        record = report.nodes[spec.id]
        if record.attempts != 1:
            raise AssertionError(f"{spec.id} made {record.attempts} attempts")
        for dep in spec.deps:
            if report.nodes[dep].finished_at > record.started_at:
                raise AssertionError(f"{spec.id} started before its dep {dep} finished")


def time_dagtrio(specs: Sequence[dagtrio.NodeSpec], hooks: int, max_parallel: int) -> float:
    coordinator = make_coordinator(hooks, max_parallel)

    async def timed() -> float:
        start = time.perf_counter()
        report = await coordinator.run(specs)
        elapsed = time.perf_counter() - start
        if not report.success:
            raise AssertionError(f"dagtrio run failed: {report.counts()} ({report.error})")
        return elapsed

    return trio.run(timed)


# ---------------------------------------------------------------------------- driver


def measure(run_once: Callable[[], float], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        # Garbage from the previous run must not be collected on this run's clock.
        gc.collect()
        times.append(run_once())
    return times


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20_000, help="nodes in the DAG")
    parser.add_argument("--width", type=int, default=100, help="nodes per layer")
    parser.add_argument("--max-parallel", type=int, default=64, help="actions at once")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per runner")
    parser.add_argument("--hooks", type=int, default=0, help="pass-through hooks for dagtrio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random DAG")
    args = parser.parse_args(argv)
    for name in ("nodes", "width", "max_parallel", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.hooks < 0:
        parser.error("--hooks must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    deps = layered_dag(args.nodes, args.width, args.seed)
    specs = dagtrio_specs(deps)
    edges = sum(map(len, deps))
    print(
        f"layered DAG: {args.nodes} nodes, {edges} edges, width {args.width}, seed {args.seed};"
        f" max_parallel={args.max_parallel}, hooks={args.hooks}, repeats={args.repeats}"
    )
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, dagtrio {dagtrio.__version__}"
    )

    check_minimal(deps, args.max_parallel)
    check_dagtrio(deps, specs, args.hooks, args.max_parallel)

    runners: dict[str, Callable[[], float]] = {
        "trio-minimal": lambda: time_minimal(deps, args.max_parallel),
        "dagtrio": lambda: time_dagtrio(specs, args.hooks, args.max_parallel),
    }
    print()
    print(f"{'runner':<14}{'median':>10}{'best':>10}{'nodes/s':>12}{'ratio':>8}")
    baseline: float | None = None
    for name, run_once in runners.items():
        times = measure(run_once, args.repeats)
        median = statistics.median(times)
        baseline = baseline or median
        print(
            f"{name:<14}{median * 1e3:>8.1f}ms{min(times) * 1e3:>8.1f}ms"
            f"{args.nodes / median:>12,.0f}{median / baseline:>7.1f}x"
        )


if __name__ == "__main__":
    main()
