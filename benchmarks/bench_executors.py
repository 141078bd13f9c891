"""CPU-bound work on threads against worker processes, alternating in one process.

Run: ``python benchmarks/bench_executors.py [NODES] [MICROS] [ROUNDS]`` (default 1000
nodes, 5000 µs of CPU each, 5 rounds). Each round runs the same layered graph (width
100) once with the sync action on ``"thread"`` and once on a `ProcessExecutor`
(``max_workers`` = the cores), alternating so that the machine's drift hits both alike;
the figures are the median wall times, the processes' speed-up over the threads, and
the serial CPU time of the work (measured here, once per round) for scale.

The strongest baseline is timed too: the same work sent straight to a trio-parallel
pool of the same size (a fresh one per run, as ours), every job started at once in one
nursery and held by a `trio.CapacityLimiter`. It knows no graph: it is the cost of the
process boundary alone, the floor under dagtrio's processes.

The work is a fixed number of interpreter loop turns (`dagtrio.bench.workload.burn`),
calibrated once: a spin until a deadline would let threads overlap their waiting and
look parallel under the GIL. The processes' time includes starting the workers (each
run starts its own pool, as a run without ``async with executor:`` does).
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import suppress
from functools import partial
from typing import Any

import trio
import trio_parallel

from dagtrio import ActionRegistry, Coordinator, NodeSpec
from dagtrio.bench.generators import layered
from dagtrio.bench.workload import burn, calibrate
from dagtrio.executors import ProcessExecutor


def crunch(ctx: Any) -> None:
    burn(ctx.inputs["iterations"])


def straight_to_the_pool(nodes: int, iterations: int, workers: int) -> float:
    async def main() -> None:
        # As ProcessExecutor does: no grace at the end (idle workers are killed).
        with suppress(trio_parallel.BrokenWorkerError):
            await pool(trio_parallel.open_worker_context(grace_period=0.0))

    async def pool(opening: Any) -> None:
        async with opening as context:
            limiter = trio.CapacityLimiter(workers)
            async with trio.open_nursery() as nursery:
                for _ in range(nodes):
                    nursery.start_soon(partial(context.run_sync, burn, iterations, limiter=limiter))

    start = time.perf_counter()
    trio.run(main)
    return time.perf_counter() - start


def main() -> None:
    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    micros = float(sys.argv[2]) if len(sys.argv) > 2 else 5000.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    iterations = round(micros * calibrate())
    registry = ActionRegistry()
    registry.action()(crunch)
    inputs = {"iterations": iterations}
    shape = layered(nodes)
    specs = [NodeSpec("crunch", id=s.id, deps=s.deps, inputs=inputs) for s in shape]
    process = [
        NodeSpec("crunch", id=s.id, deps=s.deps, inputs=inputs, executor="process") for s in shape
    ]
    pool = ProcessExecutor()
    coordinator = Coordinator(registry, executors={"process": pool})
    times: dict[str, list[float]] = {"thread": [], "process": [], "pool": [], "serial": []}
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(20):
            burn(iterations)
        times["serial"].append((time.perf_counter() - start) / 20 * nodes)
        for name, graph in (("thread", specs), ("process", process)):
            start = time.perf_counter()
            report = trio.run(coordinator.run, graph)
            times[name].append(time.perf_counter() - start)
            assert report.success, report.error
        times["pool"].append(straight_to_the_pool(nodes, iterations, pool.max_workers))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"layered {nodes} nodes, cpu {micros:g} µs each, {rounds} rounds (medians): "
        f"serial work {median['serial']:.2f} s, threads {median['thread']:.2f} s, "
        f"processes {median['process']:.2f} s: "
        f"{median['thread'] / median['process']:.2f}x faster on processes; "
        f"straight to a trio-parallel pool {median['pool']:.2f} s "
        f"(dagtrio on processes: {median['pool'] / median['process']:.2f}x its throughput)"
    )


if __name__ == "__main__":
    main()
