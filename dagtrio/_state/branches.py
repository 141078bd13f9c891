"""Branches: pauses, resumes and cancellations, indexed by branch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from .._model.events import (
    NodeCancelled,
)
from .base import (
    CANCELLED,
    PENDING,
    RUNNING,
    StateData,
)
from .node import Node

__all__ = ["Branches"]


def _ancestors(branch: str) -> Iterator[str]:
    """``"a/b/c"`` → ``"a"``, ``"a/b"``, ``"a/b/c"``: every branch a command on it covers."""
    end = branch.find("/")
    while end != -1:
        yield branch[:end]
        end = branch.find("/", end + 1)
    yield branch


def _root_in(names: Mapping[str, object], branch: str) -> str | None:
    """The highest of ``branch`` and the branches above it that is in ``names``.

    `_ancestors` inlined: this runs for every node that becomes ready while a branch
    is paused, and for every branch command.
    """
    end = branch.find("/")
    while end != -1:
        if branch[:end] in names:
            return branch[:end]
        end = branch.find("/", end + 1)
    return branch if branch in names else None


class Branches(StateData):
    """Branches: pauses, resumes and cancellations, indexed by branch."""

    # ------------------------------------------------------------------ branches

    def _paused_root(self, branch: str) -> str | None:
        return _root_in(self.paused, branch)

    def _cancelled_root(self, branch: str) -> str | None:
        return _root_in(self.cancelled, branch) if self.cancelled else None

    def _register(self, branch: str) -> None:
        """Put ``branch`` (and the branches above it) into the tree of branch names."""
        children = self.children
        if branch in children:
            return
        children[branch] = []
        child = branch
        parent = branch.rpartition("/")[0]
        while parent:
            below = children.get(parent)
            if below is not None:
                below.append(child)
                return
            children[parent] = [child]
            child = parent
            parent = parent.rpartition("/")[0]

    def _populate(self, branch: str) -> None:
        """``branch`` gets its first node: it and every branch above it are known."""
        self._register(branch)
        populated = self.populated
        for name in _ancestors(branch):
            populated.add(name)

    def _subtree(self, root: str) -> list[str]:
        """``root`` and every branch below it that holds nodes or was paused."""
        children = self.children
        found = [root]
        for name in found:  # grows as it goes: a breadth-first walk
            found.extend(children.get(name, ()))
        return found

    def _release_parked(self, root: str) -> None:
        """Let the parked nodes of ``root`` and below go (unless a pause above holds them)."""
        parked = self.parked
        for name in self._subtree(root):
            nodes = parked.pop(name, None)
            if nodes is None:
                continue
            for node in nodes:
                if node.parked:
                    node.parked = False
                    self.parked_count -= 1
                    self._make_ready(node)

    def cancel_nodes(self, candidates: Iterable[Node], reason: str) -> None:
        """End every unfinished node of ``candidates`` as CANCELLED; running ones via
        their scope.

        All of them are cancelled before any dependent is skipped, so a waiting node
        among them ends CANCELLED (as it should) even when its dep is cancelled first;
        only dependents outside them end SKIPPED.

        A running node's scope is its branch's (the coordinator runs a branch's nodes
        under one scope, which is much cheaper than a scope per attempt), so the
        candidates must hold every running node of a branch or none of them: a whole
        branch and those below it, or every running node. Every caller does.
        """
        victims = [node for node in candidates if not node.status.is_final]
        for node in victims:
            status = node.status
            ended = None
            if node.scope is not None:
                node.scope.cancel()
                if status is PENDING:
                    # A retry timer's scope: it will not fire, so count it out now.
                    self.delayed -= 1
                    node.scope = None
                else:
                    ended = node.ended = self.placement.ending(node)  # an attempt was running
            self._finish(node, CANCELLED, reason)
            self.emit(NodeCancelled(node.ref, reason, ended))
        for node in victims:
            self._skip_dependents(node)

    def stop(self, reason: str) -> None:
        """Start nothing more: every node that is not running ends CANCELLED, now or when added."""
        self.stopped = reason
        if self.on_hold:
            self.release_holds()
        self.cancel_nodes(
            [node for node in self.nodes.values() if node.status is not RUNNING], reason
        )
