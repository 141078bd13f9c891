"""Hypothesis strategies for graphs of specs (hypothesis is imported on first use)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._model.spec import NodeSpec

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["dags"]


def dags(
    *,
    action: str | Sequence[str] = "noop",
    min_nodes: int = 1,
    max_nodes: int = 20,
    max_deps: int = 3,
    id_prefix: str = "n",
    inputs: SearchStrategy[Mapping[str, Any]] | None = None,
) -> SearchStrategy[list[NodeSpec]]:
    """A hypothesis strategy for acyclic lists of specs, in shuffled order.

    Node ``i`` may depend on up to ``max_deps`` of the nodes before it, so the graph is
    acyclic by construction; the list is then shuffled, because a coordinator must not
    rely on specs arriving in dependency order. ``action`` is one name or several to
    pick from; ``inputs`` a strategy for each node's inputs (default: none).
    """
    from hypothesis import strategies as st

    actions = [action] if isinstance(action, str) else list(action)
    if not actions:
        raise ValueError("dags() needs at least one action name")
    if not 0 <= min_nodes <= max_nodes:
        raise ValueError(f"need 0 <= min_nodes <= max_nodes, got {min_nodes}, {max_nodes}")

    @st.composite
    def build(draw: st.DrawFn) -> list[NodeSpec]:
        count = draw(st.integers(min_nodes, max_nodes))
        specs = []
        for i in range(count):
            deps = (
                draw(st.lists(st.integers(0, i - 1), max_size=max_deps, unique=True)) if i else []
            )
            specs.append(
                NodeSpec(
                    draw(st.sampled_from(actions)),
                    id=f"{id_prefix}{i}",
                    deps=[f"{id_prefix}{d}" for d in deps],
                    inputs=draw(inputs) if inputs is not None else {},
                )
            )
        return draw(st.permutations(specs))

    return build()
