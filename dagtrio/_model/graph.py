"""Graph algorithms on batches of specs: topological order and cycle finding (igraph)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .spec import NodeSpec

if TYPE_CHECKING:
    import igraph

__all__ = ["batch_order"]


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
    # Imported here: igraph takes about half a second to import, and batches that are
    # already in dependency order (most of them) never get this far.
    import igraph

    graph = igraph.Graph(n=len(specs), edges=edges, directed=True)
    if graph.is_dag():
        order: list[int] = graph.topological_sorting(mode="out")
        return order
    return _one_cycle(graph, specs)


def _one_cycle(graph: igraph.Graph, specs: Sequence[NodeSpec]) -> list[str]:
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
        cycle = [*path[seen[vertex] :], vertex]
        return [str(specs[v].id) for v in cycle]
    raise AssertionError("igraph said the batch has a cycle but none was found")
