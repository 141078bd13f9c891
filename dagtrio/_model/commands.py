"""Commands: the only way anything changes a running graph.

Hooks return them, applications `Run.submit` them, and the coordinator alone applies
them, one at a time, in the order they arrive. A command that cannot be applied whole is
rejected whole: a `CommandRejected` event says why and nothing of it takes effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .events import ExecutionEvent
from .spec import NodeSpec, iter_specs

__all__ = [
    "AddNode",
    "AddNodes",
    "CancelBranch",
    "CompleteNode",
    "EmitEvent",
    "ExecutorCommand",
    "PauseBranch",
    "ResumeBranch",
    "RetryNode",
    "SetNodeInputs",
]


def _spec_tuple(specs: Iterable[NodeSpec]) -> tuple[NodeSpec, ...]:
    return tuple(iter_specs(specs, what="AddNodes specs"))


@attrs.frozen(slots=True)
class ExecutorCommand:
    """Base class of every command.

    ``dag_name`` (keyword-only) targets a DAG by name; a command naming a DAG other than
    the run's is rejected, which keeps a hook shared between runs from touching the
    wrong one. ``None`` means "the run this command was given to".
    """

    dag_name: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen(slots=True)
class AddNode(ExecutorCommand):
    """Add one node. Its deps must already be in the graph; its id must be new."""

    spec: NodeSpec = attrs.field(validator=attrs.validators.instance_of(NodeSpec))


@attrs.frozen(slots=True)
class AddNodes(ExecutorCommand):
    """Add several nodes at once, all or nothing.

    Deps may name nodes of the same batch (in any order) or nodes already in the graph;
    a cycle inside the batch, or any other fault in any spec, rejects the whole batch.
    """

    specs: tuple[NodeSpec, ...] = attrs.field(converter=_spec_tuple)


@attrs.frozen(slots=True)
class SetNodeInputs(ExecutorCommand):
    """Replace the inputs of a node that has not started yet (rejected once it has)."""

    node_id: str
    inputs: Mapping[str, Any] = attrs.field(hash=False)


@attrs.frozen(slots=True)
class PauseBranch(ExecutorCommand):
    """Hold back every node of ``branch`` (and below) that has not started; running ones finish."""

    branch: str
    reason: str | None = None


@attrs.frozen(slots=True)
class ResumeBranch(ExecutorCommand):
    """Let a paused branch start nodes again."""

    branch: str


@attrs.frozen(slots=True)
class CancelBranch(ExecutorCommand):
    """Cancel ``branch`` and below: running actions now, waiting and future nodes too."""

    branch: str
    reason: str | None = None


@attrs.frozen(slots=True)
class EmitEvent(ExecutorCommand):
    """Put a `CustomEvent` into the run's event stream, in order, for later hooks and readers."""

    event: ExecutionEvent


@attrs.frozen(slots=True)
class RetryNode(ExecutorCommand):
    """Run a held node again (``on_failure="hold"``), with a fresh ``try_count``.

    ``inputs``, when given, replace the node's inputs first (a person fixed what made
    it fail). Rejected for a node that is not held: one that is running, waiting,
    succeeded, or failed in a run that does not hold failures.
    """

    node_id: str
    inputs: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.frozen(slots=True)
class CompleteNode(ExecutorCommand):
    """End a node ``SUCCEEDED`` with ``outputs`` instead of running it: its dependents go on.

    For a held node (``on_failure="hold"``: a person did what the node could not) or
    one that has not started yet, in any mode (a step done by hand). Its record says
    ``supplied`` and its `NodeCompleted` carries ``{"supplied": True}`` as metadata.
    Rejected for a node that is running, waiting to retry, or already final and not
    held; under a journal, outputs that are not JSON values are rejected too.
    """

    node_id: str
    outputs: Any = attrs.field(default=None, hash=False)
