"""Graph generators: the shapes dagtrio is benchmarked and tested on.

Every generator exists at two levels. The ``*_graph`` functions return a `Graph`: a list
whose entry ``i`` holds the indices node ``i`` depends on, every one smaller than ``i``
(so the graph is acyclic by construction and its index order is a topological order).
Baseline schedulers run on these directly. `chain`, `fan`, `layered`, `random_dag` and
`growth` turn them into `NodeSpec` lists for dagtrio, node ``i`` getting the id
``n<i>``. A seeded generator returns the same graph for the same arguments on every
machine and Python version (it draws only from its own `random.Random`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .. import (
    AddNodes,
    EventHook,
    ExecutionEvent,
    ExecutorCommand,
    HookContext,
    NodeCompleted,
    NodeSpec,
)
from .._validate import check_int

__all__ = [
    "SHAPES",
    "Graph",
    "Growth",
    "chain",
    "chain_graph",
    "check_graph",
    "default_density",
    "edge_count",
    "fan",
    "fan_graph",
    "graph_specs",
    "growth",
    "growth_graph",
    "layered",
    "layered_graph",
    "make_graph",
    "node_id",
    "random_dag",
    "random_graph",
]

#: ``Graph[i]`` holds the indices node ``i`` depends on; each is smaller than ``i``.
Graph = list[tuple[int, ...]]

#: The shapes `make_graph` (and ``dagtrio bench --shape``) knows.
SHAPES = ("chain", "fan", "layered", "random", "growth")


def _check_count(name: str, value: object, minimum: int) -> int:
    return check_int(name, value, minimum)


def _check_density(density: object) -> float:
    if (
        isinstance(density, bool)
        or not isinstance(density, int | float)
        or math.isnan(density)
        or not 0 < density <= 1
    ):
        raise ValueError(f"density must be a number in (0, 1], got {density!r}")
    return float(density)


def node_id(index: int) -> str:
    """The id of node ``index`` in every spec list built here: ``n<index>``."""
    return f"n{index}"


def edge_count(graph: Graph) -> int:
    """How many dependency edges ``graph`` has."""
    return sum(map(len, graph))


def graph_specs(graph: Graph, action: str = "noop") -> list[NodeSpec]:
    """One `NodeSpec` per node of ``graph``, all running ``action``, with ids ``n<i>``."""
    return [
        NodeSpec(action, id=node_id(index), deps=[node_id(dep) for dep in deps])
        for index, deps in enumerate(graph)
    ]


# ----------------------------------------------------------------------- the shapes


def chain_graph(n: int) -> Graph:
    """``n`` nodes in a line: node ``i`` depends on node ``i - 1``. No parallelism at all."""
    _check_count("n", n, 1)
    return [()] + [(index - 1,) for index in range(1, n)]


def fan_graph(n: int) -> Graph:
    """One root, ``n - 2`` middle nodes that depend on it, one sink that depends on them all.

    ``n == 1`` is the root alone and ``n == 2`` a root and its sink.
    """
    _check_count("n", n, 1)
    if n == 1:
        return [()]
    middle = range(1, n - 1)
    return [()] + [(0,) for _ in middle] + [tuple(middle) or (0,)]


def layered_graph(n: int, *, width: int = 100, seed: int = 0) -> Graph:
    """Layers of ``width`` nodes; each node past the first layer depends on 1-3 random
    nodes of the layer just before it (fewer when the layer is narrower)."""
    _check_count("n", n, 1)
    _check_count("width", width, 1)
    rng = random.Random(seed)
    most = min(3, width)
    graph: Graph = []
    for index in range(n):
        layer_start = index - index % width
        if layer_start == 0:
            graph.append(())
            continue
        previous = range(layer_start - width, layer_start)
        graph.append(tuple(sorted(rng.sample(previous, rng.randint(1, most)))))
    return graph


def default_density(n: int) -> float:
    """The density `random_graph` gets from ``dagtrio bench``: two deps per node on average."""
    return min(1.0, 4 / max(1, n - 1))


def random_graph(n: int, *, density: float | None = None, seed: int = 0) -> Graph:
    """A random DAG: each pair ``i < j`` is an edge (``j`` depends on ``i``) with
    probability ``density``, independently (an Erdos-Renyi graph oriented by index).

    The graph has about ``density * n * (n - 1) / 2`` edges, so keep ``density`` small
    for big graphs; ``None`` means `default_density` (two deps per node on average).
    Drawing skips non-edges geometrically, so the cost is O(nodes + edges).
    """
    _check_count("n", n, 1)
    p = default_density(n) if density is None else _check_density(density)
    rng = random.Random(seed)
    graph: Graph = []
    # log(1 - p) is -inf at p == 1: every gap is then 0 and every pair an edge.
    log_miss = math.log1p(-p) if p < 1 else -math.inf
    for index in range(n):
        deps = []
        dep = -1
        while True:
            # The gap to the next edge is geometric: floor(log(U) / log(1 - p)).
            gap = 0 if log_miss == -math.inf else int(math.log(1.0 - rng.random()) / log_miss)
            dep += 1 + gap
            if dep >= index:
                break
            deps.append(dep)
        graph.append(tuple(deps))
    return graph


# ------------------------------------------------------------------------ NodeSpecs


def chain(n: int, *, action: str = "noop") -> list[NodeSpec]:
    """Specs for `chain_graph`: ``n`` nodes, each depending on the one before."""
    return graph_specs(chain_graph(n), action)


def fan(n: int, *, action: str = "noop") -> list[NodeSpec]:
    """Specs for `fan_graph`: 1 root, ``n - 2`` middle nodes, 1 sink."""
    return graph_specs(fan_graph(n), action)


def layered(n: int, *, width: int = 100, seed: int = 0, action: str = "noop") -> list[NodeSpec]:
    """Specs for `layered_graph`: layers of ``width``, 1-3 deps in the previous layer."""
    return graph_specs(layered_graph(n, width=width, seed=seed), action)


def random_dag(
    n: int, *, density: float | None = None, seed: int = 0, action: str = "noop"
) -> list[NodeSpec]:
    """Specs for `random_graph`: every earlier node is a dep with probability ``density``."""
    return graph_specs(random_graph(n, density=density, seed=seed), action)


# --------------------------------------------------------------------------- growth


@attrs.frozen
class Growth:
    """A workload that grows while it runs: build it with `growth`.

    The run starts with ``initial`` (a layered graph). As each node of the marked set
    (the keys of ``children``) completes, the hook from `hook` adds its ``k`` children,
    leaves that depend on it alone. The graph then ends with ``final_size`` nodes:
    exactly `final_graph` (``final_specs`` is the same graph given up front, for
    comparing growth against a static run of the same size).
    """

    initial: list[NodeSpec]
    #: marked node id -> ids of the children its completion adds, in order
    children: Mapping[str, tuple[str, ...]]
    k: int
    action: str
    final_graph: Graph

    @property
    def final_size(self) -> int:
        """How many nodes the graph has once every marked node has grown its children."""
        return len(self.final_graph)

    def final_specs(self) -> list[NodeSpec]:
        """The final graph as one static spec list (initial nodes first, then children)."""
        return graph_specs(self.final_graph, self.action)

    def hook(self) -> EventHook:
        """A fresh hook that adds each marked node's children as that node completes."""
        return _GrowthHook(self.children, self.action)


class _GrowthHook(EventHook):
    """Answers each marked node's `NodeCompleted` with one `AddNodes` of its children."""

    name = "growth"

    def __init__(self, children: Mapping[str, tuple[str, ...]], action: str) -> None:
        self._children = children
        self._action = action

    async def handle(
        self, ctx: HookContext, event: ExecutionEvent
    ) -> Iterable[ExecutorCommand] | None:
        if type(event) is not NodeCompleted:
            return None
        parent = event.node.node
        children = self._children.get(parent)
        if children is None:
            return None
        return [AddNodes([NodeSpec(self._action, id=child, deps=(parent,)) for child in children])]


def growth_graph(
    n: int, *, k: int = 4, marked: float = 0.5, width: int = 100, seed: int = 0
) -> tuple[Graph, int, list[int]]:
    """The final graph of `growth`, the size of its initial part, and the marked nodes.

    About a fraction ``marked`` of the initial nodes is marked: with
    ``m = floor(marked * n / (1 + k * marked))`` marked nodes the initial graph has
    ``n0 = n - k * m`` nodes (never fewer than ``m``), so the final graph has exactly
    ``n``. The marked nodes are a seeded sample of the initial ones; the children of
    the ``t``-th marked node (in index order) are nodes ``n0 + t * k`` to
    ``n0 + t * k + k - 1``, each depending on it alone.
    """
    _check_count("n", n, 1)
    _check_count("k", k, 1)
    if isinstance(marked, bool) or not isinstance(marked, int | float) or not 0 < marked <= 1:
        raise ValueError(f"marked must be a fraction in (0, 1], got {marked!r}")
    marked_count = int(marked * n / (1 + k * marked))
    initial_size = n - k * marked_count
    graph = layered_graph(initial_size, width=width, seed=seed)
    # A separate stream, so the initial graph is the layered graph of its size.
    rng = random.Random(f"growth-{seed}")
    chosen = sorted(rng.sample(range(initial_size), marked_count))
    for parent in chosen:
        graph.extend((parent,) for _ in range(k))
    return graph, initial_size, chosen


def growth(
    n: int,
    *,
    k: int = 4,
    marked: float = 0.5,
    width: int = 100,
    seed: int = 0,
    action: str = "noop",
) -> Growth:
    """A growth workload that ends with exactly ``n`` nodes (see `growth_graph`).

    The initial graph is a layered one (``width``, ``seed``); about a fraction
    ``marked`` of its nodes (a seeded sample) each add ``k`` children when they
    complete. With the defaults the initial graph is a third of the final one.
    """
    graph, initial_size, chosen = growth_graph(n, k=k, marked=marked, width=width, seed=seed)
    children = {
        node_id(parent): tuple(node_id(initial_size + rank * k + j) for j in range(k))
        for rank, parent in enumerate(chosen)
    }
    return Growth(
        initial=graph_specs(graph[:initial_size], action),
        children=children,
        k=k,
        action=action,
        final_graph=graph,
    )


def make_graph(
    shape: str,
    nodes: int,
    *,
    width: int = 100,
    density: float | None = None,
    k: int = 4,
    seed: int = 0,
) -> Graph:
    """The graph of ``shape`` (one of `SHAPES`) with ``nodes`` nodes; `growth`'s final one."""
    builders: Mapping[str, Any] = {
        "chain": lambda: chain_graph(nodes),
        "fan": lambda: fan_graph(nodes),
        "layered": lambda: layered_graph(nodes, width=width, seed=seed),
        "random": lambda: random_graph(nodes, density=density, seed=seed),
        "growth": lambda: growth_graph(nodes, k=k, width=width, seed=seed)[0],
    }
    if shape not in builders:
        raise ValueError(f"unknown shape {shape!r}; choose from {', '.join(SHAPES)}")
    graph: list[tuple[int, ...]] = builders[shape]()
    return graph


def check_graph(graph: Sequence[Sequence[int]]) -> None:
    """Raise `ValueError` unless every dep of node ``i`` is an index in ``0..i-1``."""
    for index, deps in enumerate(graph):
        for dep in deps:
            if not 0 <= dep < index:
                raise ValueError(f"node {index} depends on {dep}, which does not come before it")
