"""Scheduling policy: which ready node starts first, and resources nodes hold.

By default the ready queue is a deque, first ready first started: the cheapest thing
there is, and what a run without priorities needs. A run *ranks* its ready nodes once
it has a reason to:

- a node with a ``priority`` other than 0 joins (from then on, for the whole run);
- ``Coordinator(order="critical_path")``: longest remaining path first, the path
  measured in estimated seconds (`NodeSpec.estimate`, else the action's mean duration
  in the journal, else 1 s), kept current as the graph grows;
- ``Coordinator(limits=...)``: a node waiting for a resource steps aside, and comes
  back to its own place when the resource is given back.

Ranked, the queue is a heap of entries ``(-priority, -rank, seq, node)``: higher
priority first, then the longer remaining path (``rank``; 0 under ``order="fifo"``),
then the node ready first (``seq``). ``node.entry`` is a node's live entry: an entry
that is not (the node was re-ranked, or is no longer READY) is stale, dropped when it
comes up and counted in ``stale`` meanwhile, as the deque's are.

Ranks only grow: a node's remaining path gets longer when a dependent is added under
it, never shorter. Adding a batch walks up from its nodes through the deps that still
wait, and stops where nothing changes or a dep has started: the cost is what the new
nodes lengthen, not the size of the graph.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

from .base import READY, RUNNING, StateData
from .node import Node

__all__ = ["Policy"]


class Policy(StateData):
    """Scheduling policy: which ready node starts first, and resources nodes hold."""

    def rank_ready(self) -> None:
        """Rank the ready nodes from now on (see the module's docstring)."""
        if self.ranked:
            return
        self.ranked = True
        waiting = self.ready
        self.ready = deque()
        self.stale = 0
        for node in waiting:
            if node.status is READY:
                self._push(node)

    def estimate(self, node: Node) -> float:
        """Seconds one attempt of ``node`` is expected to take, for its rank."""
        estimate = node.spec.estimate
        if estimate is not None:
            return estimate
        return self.estimates.get(node.spec.action, 1.0)

    def _push(self, node: Node) -> None:
        """Queue READY ``node`` in the heap, as ready now."""
        self.seq += 1
        entry = (-node.spec.priority, -node.rank, self.seq, node)
        node.entry = entry
        heappush(self.heap, entry)

    def _next_ranked(self) -> Node | None:
        """Pop the best node allowed to start now: paused ones are parked, those whose
        resources are taken step aside."""
        heap = self.heap
        while heap:
            entry = heappop(heap)
            node: Node = entry[3]
            if node.entry is not entry or node.status is not READY:
                self.stale -= 1  # re-ranked since, or final (cancelled while queued)
                continue
            if self.paused and self._paused_root(node.branch) is not None:
                self._park(node)
                continue
            if node.uses and not self._take(node):
                continue
            return node
        return None

    def _take(self, node: Node) -> bool:
        """Take the resources ``node`` uses, or set it aside until one it lacks is back."""
        free = self.free
        for name, amount in node.uses.items():
            if free[name] < amount:
                node.blocked = True
                self.blocked_count += 1
                waiting = self.blocked.get(name)
                if waiting is None:
                    self.blocked[name] = [node]
                else:
                    waiting.append(node)
                return False
        for name, amount in node.uses.items():
            free[name] -= amount
        return True

    def _give_back(self, node: Node) -> None:
        """An attempt of ``node`` ended: its resources are free, and the nodes set
        aside for them go back to their places in the queue."""
        free = self.free
        blocked = self.blocked
        for name, amount in node.uses.items():
            free[name] += amount
            waiting = blocked.pop(name, None)
            if waiting is None:
                continue
            for other in waiting:
                if other.blocked:
                    other.blocked = False
                    self.blocked_count -= 1
                    assert other.entry is not None  # it was popped from the heap
                    heappush(self.heap, other.entry)  # its own entry: its place

    def _rank_batch(self, batch: list[Node], order: list[int]) -> None:
        """Give the nodes of a new batch their remaining paths, and lengthen those of
        the deps that still wait (see the module's docstring)."""
        nodes = self.nodes
        estimate = self.estimate
        own: dict[Node, float] = {}
        for node in batch:
            own[node] = node.rank = estimate(node)
        grown: list[tuple[Node, float]] = []
        # Dependents come later in ``order``: walking it backwards, each node's rank
        # is final before its deps are reached.
        for i in reversed(order):
            node = batch[i]
            for dep_id in node.spec.deps:
                dep = nodes[dep_id]
                if dep in own:
                    candidate = own[dep] + node.rank
                    if candidate > dep.rank:
                        dep.rank = candidate
                else:
                    grown.append((dep, node.rank))
        self._lengthen(grown)

    def _lengthen(self, grown: list[tuple[Node, float]]) -> None:
        """Each ``(node, below)``: ``node`` now has a dependent whose remaining path is
        ``below``; lengthen its rank, and its deps', while that changes anything."""
        nodes = self.nodes
        stack = grown
        while stack:
            node, below = stack.pop()
            candidate = self.estimate(node) + below
            if candidate <= node.rank:
                continue
            node.rank = candidate
            if node.status is RUNNING or node.status.is_final:
                # What it waits for is done, so its deps need nothing; but a retry,
                # a held node's RetryNode or a re-run queues it again, with this rank.
                continue
            if node.status is READY:
                self._reranked(node)
            for dep_id in node.spec.deps:
                stack.append((nodes[dep_id], candidate))

    def _reranked(self, node: Node) -> None:
        """READY ``node``'s rank changed: its entry moves (its ``seq`` stays)."""
        old = node.entry
        if old is None:
            return  # parked (paused): queued afresh when its branch resumes
        entry = (old[0], -node.rank, old[2], node)
        node.entry = entry
        if node.blocked or node.parked:
            return  # back in the heap, with this entry, when it may start
        self.stale += 1  # the old entry, still in the heap
        heappush(self.heap, entry)
