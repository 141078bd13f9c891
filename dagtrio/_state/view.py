"""A read-only, live view of a run's graph, for hooks and applications."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._model.report import NodeRecord
from .._model.spec import NodeSpec, NodeStatus

if TYPE_CHECKING:
    from .node import Node
    from .state import RunState

__all__ = ["GraphView"]


class GraphView:
    """Look at the graph of a running run without being able to change it.

    Reads are live: they show the state at the moment of the call. Hooks get one as
    ``ctx.graph`` (a planner checks what exists before adding nodes); applications get
    one as ``run.graph`` (a UI shows progress). Changes go through commands only.
    """

    __slots__ = ("_state",)

    def __init__(self, state: RunState) -> None:
        self._state = state

    def _node(self, node_id: str) -> Node:
        try:
            return self._state.nodes[node_id]
        except KeyError:
            raise KeyError(f"node {node_id!r} is not in the graph") from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._state.nodes

    def __iter__(self) -> Iterator[str]:
        """Node ids, in the order the nodes were added."""
        return iter(list(self._state.nodes))

    def __len__(self) -> int:
        return len(self._state.nodes)

    def status(self, node_id: str) -> NodeStatus:
        """Where the node stands now."""
        return self._node(node_id).status

    def spec(self, node_id: str) -> NodeSpec:
        """The node's spec, with its final id (and current inputs)."""
        return self._node(node_id).spec

    def branch(self, node_id: str) -> str:
        """The branch the node was placed on."""
        return self._node(node_id).branch

    def outputs(self, node_id: str) -> Any:
        """The outputs of a node that succeeded; `LookupError` for any other node."""
        node = self._node(node_id)
        if node.status is not NodeStatus.SUCCEEDED:
            raise LookupError(f"node {node_id!r} has no outputs: it is {node.status.value}")
        return node.outputs

    def record(self, node_id: str) -> NodeRecord:
        """A snapshot of everything known about the node (as in the final report)."""
        return self._node(node_id).record()

    def counts(self) -> dict[NodeStatus, int]:
        """How many nodes are in each status now."""
        return dict(Counter(node.status for node in self._state.nodes.values()))

    @property
    def paused_branches(self) -> tuple[str, ...]:
        """Branches paused right now (a branch below one of these is paused too)."""
        return tuple(self._state.paused)

    @property
    def held(self) -> tuple[str, ...]:
        """Failed nodes held for a decision right now (``on_failure="hold"``), oldest first."""
        return tuple(self._state.on_hold)

    @property
    def cancelled_branches(self) -> tuple[str, ...]:
        """Branches cancelled so far."""
        return tuple(self._state.cancelled)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k.value}={v}" for k, v in sorted(self.counts().items()))
        return f"<GraphView {len(self)} nodes: {counts}>"
