"""dagtrio on a Dask cluster against the same graph through Dask's own futures.

Run: ``python benchmarks/bench_dask.py [NODES] [ROUNDS]`` (default 1000 nodes, 3
rounds). One ``LocalCluster`` of 2 worker processes (1 thread each) serves both sides,
alternating each round on the same layered graph (width 100) of no-op sync tasks:

- ``dask futures``: every node ``client.submit``-ed up front, its deps' futures as its
  arguments, then the last layer waited for: Dask's scheduler sees the whole graph;
- ``dagtrio``: the coordinator runs the graph on ``DaskExecutor(client=...)``,
  submitting each node once its deps succeeded (one round trip to the cluster per
  node, results coming back to the coordinator, which a growing graph needs).

Printed: the median wall times, dagtrio's throughput as a fraction of Dask's, and the
time per node of each.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import distributed
import trio

from dagtrio import ActionRegistry, Coordinator, NodeSpec
from dagtrio.bench.generators import layered
from dagtrio.executors import DaskExecutor


def noop_node(ctx: Any) -> int:
    return 1


def noop_task(*upstream: int) -> int:
    return 1


def through_futures(client: Any, specs: list[NodeSpec]) -> float:
    start = time.perf_counter()
    futures: dict[str, Any] = {}
    for spec in specs:
        assert spec.id is not None
        futures[spec.id] = client.submit(
            noop_task, *[futures[dep] for dep in spec.deps], key=f"{spec.id}-{start}", pure=False
        )
    distributed.wait(list(futures.values()))
    return time.perf_counter() - start


def through_dagtrio(coordinator: Coordinator, specs: list[NodeSpec]) -> float:
    start = time.perf_counter()
    report = trio.run(coordinator.run, specs)
    elapsed = time.perf_counter() - start
    assert report.success, report.error
    return elapsed


def main() -> None:
    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    shape = layered(nodes)
    specs = [NodeSpec("noop_node", id=s.id, deps=s.deps) for s in shape]
    registry = ActionRegistry()
    registry.action(executor="dask")(noop_node)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        coordinator = Coordinator(registry, executors={"dask": DaskExecutor(client=client)})
        through_futures(client, specs[:100])  # warm both paths up
        through_dagtrio(coordinator, specs[:100])
        times: dict[str, list[float]] = {"dask": [], "dagtrio": []}
        for _ in range(rounds):
            times["dask"].append(through_futures(client, specs))
            times["dagtrio"].append(through_dagtrio(coordinator, specs))
    dask, ours = statistics.median(times["dask"]), statistics.median(times["dagtrio"])
    print(
        f"layered {nodes} no-op nodes on a 2-process LocalCluster, {rounds} rounds (medians): "
        f"dask futures {dask:.2f} s ({dask / nodes * 1e6:.0f} µs a node), "
        f"dagtrio {ours:.2f} s ({ours / nodes * 1e6:.0f} µs a node): "
        f"dagtrio's throughput {dask / ours:.2f}x Dask's"
    )


if __name__ == "__main__":
    main()
