"""Re-running part of a run: nodes that ended go back to waiting, outputs supplied by hand."""

from __future__ import annotations

import heapq
import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from .._errors import InvalidGraphError, describe
from .._model import jsonvalue
from .._model.frozen import freeze
from .base import PENDING, READY, SUCCEEDED, StateData
from .node import Node

__all__ = ["Rerun", "RerunPlan"]


class RerunPlan:
    """What `Coordinator.resume` was asked to run again, checked for its shape.

    ``failed``: every node that failed, was skipped or cancelled (outside cancelled
    branches); ``start``: these nodes and everything below them, succeeded or not;
    ``outputs``: these nodes complete with the given outputs (``supplied``), and
    everything below them runs again.
    """

    __slots__ = ("failed", "outputs", "start")

    def __init__(
        self,
        failed: bool = False,
        start: Iterable[str] = (),
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(start, str | bytes) or not isinstance(start, Iterable):
            raise TypeError(
                f"rerun_from must be a list of node ids, got {type(start).__name__} {start!r}"
                + (
                    f" (for one node, write rerun_from=[{start!r}])"
                    if isinstance(start, str)
                    else ""
                )
            )
        self.failed = failed
        self.start = tuple(dict.fromkeys(start))
        for node_id in self.start:
            if not isinstance(node_id, str):
                raise TypeError(f"rerun_from must hold node ids (strings), got {node_id!r}")
        if outputs is None:
            outputs = {}
        if not isinstance(outputs, Mapping):
            raise TypeError(
                f"outputs must map node ids to their outputs, got {type(outputs).__name__}"
            )
        for node_id in outputs:
            if not isinstance(node_id, str):
                raise TypeError(f"outputs must be keyed by node ids (strings), got {node_id!r}")
        self.outputs = dict(outputs)

    def __bool__(self) -> bool:
        return bool(self.failed or self.start or self.outputs)

    def encode(self) -> str:
        """The plan as a ``rerun`` record's data (outputs must be JSON values)."""
        return jsonvalue.dumps(
            {"failed": self.failed, "from": list(self.start), "outputs": self.outputs}
        )

    @classmethod
    def decode(cls, text: str) -> RerunPlan:
        data = json.loads(text)
        return cls(bool(data["failed"]), data["from"], data["outputs"])


class Rerun(StateData):
    """Re-running part of a run: nodes that ended go back to waiting."""

    def rerun(self, plan: RerunPlan) -> list[str]:
        """Apply ``plan``: the nodes it names wait again, with a fresh ``try_count``.

        `InvalidGraphError` naming the node, having changed nothing, for an id that is
        not in the run, a node of a cancelled branch, or outputs the journal cannot
        store. Returns the ids of the nodes that wait again (or were supplied). Only
        before the run serves (nothing runs, no timer waits).
        """
        nodes = self.nodes
        for node_id in (*plan.start, *plan.outputs):
            node = nodes.get(node_id)
            if node is None:
                raise InvalidGraphError(node_id, f"is not in run {self.run_id!r}")
            root = self._cancelled_root(node.branch)
            if root is not None:
                raise InvalidGraphError(
                    node_id, f"its branch {root!r} was cancelled: nothing of it runs again"
                )
        supplied: dict[str, Any] = {}
        for node_id, value in plan.outputs.items():
            try:
                supplied[node_id] = value if value is None else freeze(value)
            except Exception as exc:
                raise InvalidGraphError(
                    node_id, f"outputs cannot be made read-only: {describe(exc)}"
                ) from None
        if self.recorder is not None:
            for node_id, value in plan.outputs.items():
                # The last check: what it encodes goes with the node's outcome record.
                problem = self.recorder.take_outputs(node_id, value)
                if problem is not None:
                    raise InvalidGraphError(node_id, problem)
        chosen = self._chosen(plan)
        if self.recorder is not None:
            self.recorder.mark("rerun", plan.encode())
        # A re-run is a fresh decision: a shutdown it follows no longer holds.
        self.stopped = None
        doomed = self._reset(chosen)
        for node_id, value in supplied.items():
            self._supply(nodes[node_id], value)
        # After the supplied ones: a skip must not reach a node about to be supplied.
        for node, dep in doomed:
            if not node.status.is_final:
                self._skip(node, dep)
        for node in chosen:
            if node.status is PENDING and node.waiting == 0:
                self._make_ready(node)
        return [node.id for node in chosen]

    def _chosen(self, plan: RerunPlan) -> list[Node]:
        """The nodes ``plan`` makes wait again, in the graph's order."""
        nodes = self.nodes
        below: dict[str, list[Node]] = {}
        for node in nodes.values():
            for dep in node.spec.deps:
                below.setdefault(dep, []).append(node)
        picked: set[str] = set()

        def walk(stack: list[Node], everything: bool) -> None:
            while stack:
                node = stack.pop()
                if node.id in picked or self._cancelled_root(node.branch) is not None:
                    continue
                picked.add(node.id)
                for dependent in below.get(node.id, ()):
                    if everything or dependent.status is not SUCCEEDED:
                        stack.append(dependent)

        # From a start, everything below runs again, even what succeeded: it was
        # computed from outputs that are about to change. Below a failure nothing
        # succeeded but what a person supplied, which stands.
        walk([nodes[node_id] for node_id in (*plan.start, *plan.outputs)], True)
        if plan.failed:
            walk(
                [
                    node
                    for node in nodes.values()
                    if node.status.is_final and node.status is not SUCCEEDED
                ],
                False,
            )
        return [node for node in nodes.values() if node.id in picked]

    def _reset(self, chosen: list[Node]) -> list[tuple[Node, Node]]:
        """``chosen`` wait again: each as if just added, with its deps rewired.

        Returns the (node, dep) pairs of nodes that cannot run: a dep of theirs ended
        without succeeding and does not run again (the caller skips them)."""
        nodes = self.nodes
        ids = {node.id for node in chosen}
        # Their deps' lists of dependents may hold them already (a node cancelled
        # while it waited stays listed): drop them, to be listed once below.
        for dep_id in {dep for node in chosen for dep in node.spec.deps}:
            dep = nodes[dep_id]
            if dep.dependents:
                dep.dependents = [node for node in dep.dependents if node.id not in ids]
        for node in chosen:
            # A deferred node waits for its deps, then for quiet, again.
            self.released.discard(node.id)
            self.deferred.pop(node.id, None)
            if node.status.is_final:
                self.unfinished += 1
                if self.deferring:
                    self._opened(node)
            if node.on_hold:
                self._unhold(node)
            if node.status is SUCCEEDED:
                self.outputs.pop(node.id, None)
            node.status = PENDING
            node.parked = False
            if node.blocked:
                node.blocked = False
                self.blocked_count -= 1
            node.waiting = 0
            node.first_try = node.attempts
            node.outputs = node.error = node.traceback = node.ended = None
            # Its record tells of this round (the journal keeps the earlier ones).
            node.started_at = node.finished_at = None
            node.cached = node.supplied = False
        # Rebuild the queues: entries of the nodes just reset would come up stale.
        self.ready = deque(node for node in self.ready if node.status is READY)
        self.heap = [
            entry for entry in self.heap if entry[3].status is READY and entry[3].entry is entry
        ]
        heapq.heapify(self.heap)
        self.stale = 0
        for name, waiting in list(self.blocked.items()):
            kept = [node for node in waiting if node.blocked and node.status is READY]
            if kept:
                self.blocked[name] = kept
            else:
                del self.blocked[name]
        for branch, parked in list(self.parked.items()):
            kept = [node for node in parked if node.parked and node.status is READY]
            if kept:
                self.parked[branch] = kept
            else:
                del self.parked[branch]
        self.parked_count = sum(len(parked) for parked in self.parked.values())
        doomed: list[tuple[Node, Node]] = []
        for node in chosen:
            for dep_id in node.spec.deps:
                dep = nodes[dep_id]
                if dep.status is SUCCEEDED:
                    continue
                if dep.status.is_final and not dep.on_hold:
                    doomed.append((node, dep))
                    continue
                node.waiting += 1
                if isinstance(dep.dependents, list):
                    dep.dependents.append(node)
                else:
                    dep.dependents = [node]
        return doomed
