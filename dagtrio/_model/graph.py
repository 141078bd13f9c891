"""Graph algorithms (igraph): a batch's order or one of its cycles; levels and the
critical path of a whole DAG."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import attrs

from .spec import NodeSpec

if TYPE_CHECKING:
    import igraph

__all__ = ["Shape", "batch_order", "dag_order", "gc_paused", "shape"]


def batch_order(specs: Sequence[NodeSpec]) -> list[int] | list[str]:
    """Order a batch so every spec comes after the batch members it depends on.

    Returns the indexes of ``specs`` in dependency order, or, when the batch holds a
    cycle, the ids along one cycle (first id repeated at the end). Deps on nodes outside
    the batch are ignored: those already exist, so they cannot close a cycle. Every spec
    must have an id. The graph is built in one call from an edge list, since igraph's
    per-vertex adds are O(V) each.
    """
    if len(specs) == 1:
        spec = specs[0]
        return [spec.id, spec.id] if spec.id in spec.deps else [0]  # type: ignore[list-item,unused-ignore]
    index = {spec.id: i for i, spec in enumerate(specs)}
    edges = [(index[dep], i) for i, spec in enumerate(specs) for dep in spec.deps if dep in index]
    if not edges:
        return list(range(len(specs)))
    order, cycles = dag_order(len(specs), edges)
    if cycles is None:
        return order
    return [str(specs[v].id) for v in cycles[0]]


def dag_order(n: int, edges: Sequence[tuple[int, int]]) -> tuple[list[int], list[list[int]] | None]:
    """The vertices of the graph of ``n`` vertices and ``edges`` (``(dep, node)``
    pairs) in dependency order, and None; or, when it has cycles, ``[]`` and one
    cycle through each knot of them (a strongly connected component), as vertices
    along it, the first repeated at the end."""
    # Imported here: igraph takes about half a second to import, and batches that are
    # already in dependency order (most of them) never get this far.
    import igraph

    graph = igraph.Graph(n=n, edges=list(edges), directed=True)
    if graph.is_dag():
        order: list[int] = graph.topological_sorting(mode="out")
        return order, None
    return [], _cycles(graph)


def _cycles(graph: igraph.Graph) -> list[list[int]]:
    found: list[list[int]] = []
    for component in graph.connected_components(mode="strong"):
        members = set(component)
        start = component[0]
        if len(component) == 1 and start not in graph.successors(start):
            continue
        # Every vertex of a strongly connected component with a cycle has a successor
        # inside it, so walking successors inside the component must revisit a vertex.
        path: list[int] = []
        seen: dict[int, int] = {}
        vertex = start
        while vertex not in seen:
            seen[vertex] = len(path)
            path.append(vertex)
            vertex = next(v for v in graph.successors(vertex) if v in members)
        found.append([*path[seen[vertex] :], vertex])
    if not found:
        raise AssertionError("igraph said the batch has a cycle but none was found")
    return found


@attrs.frozen
class Shape:
    """The shape of a DAG: each node's level and the critical path.

    A node's ``level`` is the number of nodes on the longest chain of deps above it
    (0 for a node without deps), so the nodes of one level could all run at once:
    ``widths[k]`` of them at level ``k`` is how much parallelism the graph offers there.
    The ``critical_path`` is the chain whose weights (durations) add up the most: no
    schedule, however parallel, finishes the graph sooner than ``critical_length``.
    """

    order: list[int]
    levels: list[int]
    widths: list[int]
    critical_path: list[int]
    critical_length: float


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a large graph is built or walked.

    Building allocates objects and frees none, the worst case for the collector: it
    would walk the growing heap again and again (a third of the time of loading a
    100 000-node file). Nothing built here forms a cycle, so the collection waits.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def shape(
    n: int,
    edges: Sequence[tuple[int, int]],
    weights: Sequence[float],
    order: Sequence[int] | None = None,
) -> Shape:
    """Levels and the critical path of the DAG of ``n`` vertices and ``edges``
    (``(dep, node)`` pairs), each vertex weighing ``weights[v]``.

    igraph orders the vertices (`dag_order`, in C; pass ``order`` if it did already);
    the pass of dynamic programming over that order is O(V + E). `ValueError` if the
    graph has a cycle.
    """
    with gc_paused():
        return _shape(n, edges, weights, order)


def _shape(
    n: int,
    edges: Sequence[tuple[int, int]],
    weights: Sequence[float],
    order: Sequence[int] | None,
) -> Shape:
    if order is None:
        order, cycles = dag_order(n, edges)
        if cycles is not None:
            raise ValueError("the graph has a cycle")
    order = list(order)
    deps: list[list[int]] = [[] for _ in range(n)]
    for dep, node in edges:
        deps[node].append(dep)
    levels = [0] * n
    finish = [0.0] * n  # the heaviest chain ending at each vertex, itself included
    via = [-1] * n
    for v in order:
        level = 0
        best = 0.0
        best_dep = -1
        for u in deps[v]:
            if levels[u] >= level:
                level = levels[u] + 1
            if finish[u] > best or best_dep < 0:
                best = finish[u]
                best_dep = u
        levels[v] = level
        finish[v] = best + weights[v]
        via[v] = best_dep
    widths = [0] * (max(levels) + 1 if n else 0)
    for level in levels:
        widths[level] += 1
    path: list[int] = []
    if n:
        end = max(range(n), key=finish.__getitem__)
        while end >= 0:
            path.append(end)
            end = via[end]
        path.reverse()
    return Shape(order, levels, widths, path, finish[path[-1]] if path else 0.0)
