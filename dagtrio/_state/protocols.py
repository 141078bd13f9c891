"""What the state needs from the rooms above it, as protocols: it never imports them.

The journal's recorder (`_durable.recorder.RunRecorder`) and the cache's memo
(`_durable.memo.Memo`) implement these; the state calls them synchronously, at the
moment each change happens, so that what they write is in the one order of the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._model.commands import ExecutorCommand
from .._model.spec import NodeCtx, NodeSpec

if TYPE_CHECKING:
    from .node import Node

__all__ = ["MemoPolicy", "Recorder"]


class Recorder(Protocol):
    """Told of every change the state makes, before its event: the journal's side."""

    def encode_batch(self, specs: Sequence[NodeSpec], next_auto_id: int) -> str:
        """The batch as it will be stored; `InvalidGraphError` names a node it cannot be."""
        ...

    def add(self, encoded: str, count: int) -> None:
        """A batch of ``count`` nodes, as `encode_batch` gave it, joined the graph."""
        ...

    def command(self, command: ExecutorCommand) -> None:
        """``command`` is about to be applied; `TypeError`/`ValueError` if it cannot be
        stored (then it is rejected, and nothing of it applied)."""
        ...

    def take_outputs(self, node_id: str, outputs: Any) -> str | None:
        """A success's outputs are about to be recorded; the error if they cannot be."""
        ...

    def outcome(self, node: Node) -> None:
        """``node`` reached its final state."""
        ...

    def mark(self, kind: str, data: str | None = None) -> None:
        """A record of the run's own progress (``rerun``: what a resume runs again)."""
        ...


class MemoPolicy(Protocol):
    """Decides which nodes use the cache: the cache's side."""

    def wrap(self, node: Node) -> Callable[[NodeCtx], Awaitable[Any]] | None:
        """What ``node``'s worker should call instead of its action, to look up (and
        store) its result; None if it does not use the cache. A hit returns a
        `NodeOutput` whose metadata says ``cached``."""
        ...
