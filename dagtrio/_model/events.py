"""Events: what happened in a run, in the one order every hook and reader sees.

Only the coordinator creates lifecycle events; a hook can add a `CustomEvent` to the
stream with the `EmitEvent` command. Every event is a frozen attrs class and round-trips
through `dagtrio.converter` as a tagged union (a ``type`` field names the class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .spec import Ending, NodeOutput, NodeRef, NodeSpec

if TYPE_CHECKING:
    from .commands import ExecutorCommand

__all__ = [
    "BranchCancelled",
    "BranchPaused",
    "BranchResumed",
    "CommandRejected",
    "CustomEvent",
    "ExecutionEvent",
    "HookFailed",
    "NodeAdded",
    "NodeCancelled",
    "NodeCompleted",
    "NodeFailed",
    "NodeProgress",
    "NodeRetrying",
    "NodeSkipped",
    "NodeStarted",
    "RunIdle",
    "RunResumed",
]


@attrs.frozen(slots=True)
class ExecutionEvent:
    """Base class of every event. Hooks receive them; ``run.events()`` yields them."""


@attrs.frozen(slots=True)
class NodeAdded(ExecutionEvent):
    """A node joined the graph (initial spec or growth); ``spec`` has its final id.

    Every node gets exactly one, before any other event about it. ``branch`` is the
    branch the node was placed on (its spec's, its first dep's, or ``"main"``).
    """

    node: NodeRef
    spec: NodeSpec
    branch: str


@attrs.frozen(slots=True)
class NodeStarted(ExecutionEvent):
    """An attempt of the node's action began (one event per attempt)."""

    node: NodeRef
    attempt: int


@attrs.frozen(slots=True)
class NodeCompleted(ExecutionEvent):
    """The node succeeded; ``outcome.outputs`` is what its dependents receive."""

    node: NodeRef
    outcome: NodeOutput


@attrs.frozen(slots=True)
class NodeFailed(ExecutionEvent):
    """The node failed for good: its last attempt failed (emitted once per node).

    ``traceback`` is that attempt's formatted traceback when it raised, else ``None``.
    ``ended`` says, for an attempt that timed out, what became of its work (see
    `Ending`); ``None`` for an attempt that ended by itself.
    """

    node: NodeRef
    error: str
    traceback: str | None = None
    ended: Ending | None = None


@attrs.frozen(slots=True)
class NodeProgress(ExecutionEvent):
    """What a running attempt said about its progress: ``await ctx.emit(payload)``.

    In the run's one order with every other event, between the attempt's
    `NodeStarted` and its end; never journaled (a resumed run does not deliver it
    again). Streamed tokens, a percentage, a partial result: whatever the action sends.
    """

    node: NodeRef
    attempt: int
    payload: Any = None


@attrs.frozen(slots=True)
class NodeRetrying(ExecutionEvent):
    """Attempt ``attempt`` failed with ``error``; the next starts after ``delay`` seconds.

    ``ended`` is as for `NodeFailed`: what became of a timed-out attempt's work.
    """

    node: NodeRef
    attempt: int
    error: str
    delay: float
    ended: Ending | None = None


@attrs.frozen(slots=True)
class NodeCancelled(ExecutionEvent):
    """The node was cancelled (branch cancel, shutdown or run failure) before it ended.

    ``ended`` says what became of the work of an attempt that was running (see
    `Ending`): ``"killed"``, ``"abandoned"`` or ``"finished"``; ``None`` when none was.
    """

    node: NodeRef
    reason: str
    ended: Ending | None = None


@attrs.frozen(slots=True)
class NodeSkipped(ExecutionEvent):
    """The node will never run because a dep did not succeed; ``reason`` names the dep."""

    node: NodeRef
    reason: str


@attrs.frozen(slots=True)
class BranchPaused(ExecutionEvent):
    """No node of ``branch`` (or below it) starts until it is resumed.

    ``known`` is false when no node is on or below the branch yet: the pause still
    holds for nodes added to it later (pause a tool's branch before adding the tool),
    but a misspelt name shows up here.
    """

    branch: str
    reason: str | None = None
    known: bool = True


@attrs.frozen(slots=True)
class BranchResumed(ExecutionEvent):
    """A paused branch may start nodes again (``known`` as for `BranchPaused`)."""

    branch: str
    known: bool = True


@attrs.frozen(slots=True)
class BranchCancelled(ExecutionEvent):
    """``branch`` and everything below it was cancelled (``known`` as for `BranchPaused`).

    Nodes added to a cancelled branch later end ``CANCELLED`` at once.
    """

    branch: str
    reason: str | None = None
    known: bool = True


@attrs.frozen(slots=True)
class CommandRejected(ExecutionEvent):
    """``command`` was not applied, not even in part; ``reason`` says why. The run goes on."""

    command: ExecutorCommand
    reason: str


@attrs.frozen(slots=True)
class HookFailed(ExecutionEvent):
    """With ``hook_errors="isolate"``: ``hook`` raised ``error`` and keeps receiving events."""

    hook: str
    error: str


@attrs.frozen(slots=True)
class RunIdle(ExecutionEvent):
    """Nothing can progress until a person (or a hook) decides.

    ``branches`` are the paused branches (resume one with `ResumeBranch`), ``held``
    the failed nodes held for a decision (``on_failure="hold"``: `RetryNode` or
    `CompleteNode`). Emitted once each time the run comes to rest; `Run.shutdown`
    still ends it.
    """

    branches: tuple[str, ...] = ()
    held: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class RunResumed(ExecutionEvent):
    """A run was resumed from its journal; earlier events may be delivered again.

    ``rerun`` names the nodes that `Coordinator.resume` (``rerun=``, ``rerun_from=``,
    ``outputs=``) made wait again or supplied, in the graph's order.
    """

    rerun: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class CustomEvent(ExecutionEvent):
    """An application event placed in the stream by a hook (`EmitEvent`) or from outside."""

    name: str
    payload: Any = None


# ------------------------------------------------------------- fast constructors
# A run that is listened to builds a NodeAdded, a NodeStarted and a NodeCompleted per
# node. attrs' frozen __init__ costs a Python frame and a setattr by name per field;
# these store straight through the slots' descriptors (none of these classes has a
# default, validator or converter to honour). tests/test_events.py holds each equal
# to what the class itself builds.


def _two(cls: type[Any], first: str, second: str) -> Any:
    new = object.__new__
    set_first = cls.__dict__[first].__set__
    set_second = cls.__dict__[second].__set__

    def make(a: Any, b: Any) -> Any:
        event = new(cls)
        set_first(event, a)
        set_second(event, b)
        return event

    return make


def _three(cls: type[Any], first: str, second: str, third: str) -> Any:
    new = object.__new__
    set_first = cls.__dict__[first].__set__
    set_second = cls.__dict__[second].__set__
    set_third = cls.__dict__[third].__set__

    def make(a: Any, b: Any, c: Any) -> Any:
        event = new(cls)
        set_first(event, a)
        set_second(event, b)
        set_third(event, c)
        return event

    return make


if TYPE_CHECKING:

    def node_started(node: NodeRef, attempt: int) -> NodeStarted: ...
    def node_completed(node: NodeRef, outcome: NodeOutput) -> NodeCompleted: ...
    def node_added(node: NodeRef, spec: NodeSpec, branch: str) -> NodeAdded: ...
    def node_output(outputs: Any, success: bool, metadata: Any) -> NodeOutput: ...

else:
    node_started = _two(NodeStarted, "node", "attempt")
    node_completed = _two(NodeCompleted, "node", "outcome")
    node_added = _three(NodeAdded, "node", "spec", "branch")
    node_output = _three(NodeOutput, "outputs", "success", "metadata")
