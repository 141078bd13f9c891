"""Deferred nodes (``NodeSpec.defer``): a fan-in that waits until its branch is quiet.

A deferred node whose deps succeeded is *due*: it waits in `StateData.deferred`
instead of the ready queue until the coordinator finds its branch quiet (`quiet`)
and every event about the branch through the pipeline (the run's side of it). From
the first due node on, the state keeps the unfinished nodes of each branch
(``open``), so that a check costs what is unfinished below the branch, not the whole
graph; a run without deferred nodes keeps nothing and pays one attribute read per
node that becomes ready.
"""

from __future__ import annotations

from .base import PENDING, StateData
from .node import Node

__all__ = ["Deferral"]


class Deferral(StateData):
    """Deferred nodes: due ones wait for their branch to be quiet."""

    def _defer(self, node: Node) -> None:
        """``node`` (deferred, its deps succeeded) waits for its branch to be quiet."""
        if not self.deferring:
            self._start_deferring()
        node.status = PENDING
        self.deferred[node.id] = node

    def _start_deferring(self) -> None:
        self.deferring = True
        opened = self.open
        for node in self.nodes.values():
            if not node.status.is_final:
                found = opened.get(node.branch)
                if found is None:
                    opened[node.branch] = {node}
                else:
                    found.add(node)

    def _opened(self, node: Node) -> None:
        """``node`` is unfinished again (or for the first time), while deferring."""
        found = self.open.get(node.branch)
        if found is None:
            self.open[node.branch] = {node}
        else:
            found.add(node)
        self.changes += 1

    def _closed(self, node: Node) -> None:
        """``node`` became final, while deferring."""
        found = self.open.get(node.branch)
        if found is not None:
            found.discard(node)
        self.deferred.pop(node.id, None)  # a due one cancelled, skipped or supplied
        self.changes += 1

    def release_deferred(self, nodes: list[Node]) -> None:
        """``nodes`` (due, their branches quiet) may start: they become ready."""
        for node in nodes:
            self.released.add(node.id)
            self._make_ready(node)

    def quiet(self, branch: str) -> bool:
        """Whether nothing on or below ``branch`` can still make progress but deferred
        nodes and what waits on them (see `NodeSpec.defer`): nothing waiting, running,
        waiting to retry, paused or held."""
        if self.paused and self._paused_root(branch) is not None:
            return False  # paused: what is added meanwhile must run first, on resume
        names = self._subtree(branch)
        if self.on_hold:
            below = set(names)
            if any(node.branch in below for node in self.on_hold.values()):
                return False
        blocked: dict[str, bool] = {}
        opened = self.open
        for name in names:
            for node in opened.get(name, ()):
                if node.spec.defer or self._behind_deferred(node, blocked):
                    continue
                return False
        return True

    def _behind_deferred(self, start: Node, known: dict[str, bool]) -> bool:
        """Whether ``start`` waits, through its deps, on a deferred node that has not
        ended (iterative: a long chain must not hit the recursion limit)."""
        nodes = self.nodes
        stack = [start]
        while stack:
            node = stack[-1]
            if node.id in known:
                stack.pop()
                continue
            if node.status is not PENDING or not node.waiting:
                known[node.id] = False  # ready, running, delayed or final: not waiting
                stack.pop()
                continue
            unknown: list[Node] = []
            behind = False
            for dep_id in node.spec.deps:
                dep = nodes[dep_id]
                if dep.status.is_final and not dep.on_hold:
                    continue
                if dep.spec.defer:
                    behind = True
                    break
                seen = known.get(dep_id)
                if seen is None:
                    unknown.append(dep)
                elif seen:
                    behind = True
                    break
            if behind or not unknown:
                known[node.id] = behind
                stack.pop()
            else:
                stack.extend(unknown)
        return known[start.id]
