"""One node's bookkeeping: what the state keeps about it, and its record in reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import trio

from .._actions.registry import NodeAction
from .._model.frozen import EMPTY
from .._model.report import NodeRecord
from .._model.spec import Ending, NodeCtx, NodeRef, NodeSpec, NodeStatus

__all__ = ["CANCELLED_ATTEMPT", "OWNERS", "Node", "Records"]

PENDING = NodeStatus.PENDING
SUCCEEDED = NodeStatus.SUCCEEDED


#: `Node.result` of an attempt that was cancelled while it ran
CANCELLED_ATTEMPT: Any = object()

#: The only `Node` slots written outside `dagtrio._state`, and the modules that write each:
#: a worker hands its attempt's end to the coordinator on the node itself (``result``,
#: ``fault``), so that ending an attempt allocates nothing (`Crews._work`); the loop
#: names the crew a node starts in and clears all three once it has read them.
#: ``tests/test_ownership.py`` holds every other module to this.
OWNERS: dict[str, frozenset[str]] = {
    "crew": frozenset({"dagtrio._runtime.loop"}),
    "result": frozenset({"dagtrio._runtime.crews", "dagtrio._runtime.loop"}),
    "fault": frozenset({"dagtrio._runtime.crews", "dagtrio._runtime.loop"}),
}


class _Flag:
    """A boolean attribute of `Node` kept as one bit of its ``_flags``."""

    def __init__(self, bit: int, doc: str) -> None:
        self.bit = bit
        self.__doc__ = doc

    def __get__(self, node: Node, owner: object = None) -> bool:
        return bool(node._flags & self.bit)

    def __set__(self, node: Node, value: bool) -> None:
        node._flags = node._flags | self.bit if value else node._flags & ~self.bit


class Node:
    """Mutable bookkeeping for one node. Only `RunState` writes to it."""

    __slots__ = (
        "_flags",
        "_ref",
        "action",
        "attempts",
        "branch",
        "call",
        "crew",
        "dependents",
        "ended",
        "entry",
        "error",
        "fault",
        "finished_at",
        "first_try",
        "id",
        "outputs",
        "parked",
        "rank",
        "result",
        "scope",
        "spec",
        "started_at",
        "status",
        "traceback",
        "uses",
        "waiting",
    )

    def __init__(
        self,
        spec: NodeSpec,
        dag: str,
        branch: str,
        action: NodeAction,
        call: Callable[[NodeCtx], Awaitable[Any]],
    ) -> None:
        self.id: str = spec.id  # type: ignore[assignment]
        # The run's DAG name until an event needs the node's `NodeRef`, which then
        # takes its place (a slot less per node than keeping both).
        self._ref: NodeRef | str = dag
        self._flags = 0
        self.spec = spec
        self.branch = branch
        self.action = action
        #: what a worker awaits (see `Placement.place`): the function itself for an
        #: async `FunctionAction` (one coroutine less per attempt; the worker wraps a
        #: plain value), its executor's call, or ``execute``
        self.call = call
        #: what became of the last attempt's work, if it was cancelled or timed out
        #: (None: it ended by itself); what would become of it, `Placement.ending`
        self.ended: Ending | None = None
        self.status = PENDING
        #: deps that have not succeeded yet
        self.waiting = 0
        #: nodes waiting for this one: () until the first comes and again once they
        #: were told, rather than an empty list per node for the garbage collector to walk
        self.dependents: list[Node] | tuple[()] = ()
        self.attempts = 0
        #: attempts made before the current round of ``try_count`` attempts began
        #: (`RetryNode` and re-runs give a node a fresh round; the count goes on)
        self.first_try = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: str | None = None
        self.outputs: Any = None
        #: cancel scope of the running attempt or of the retry-delay timer
        self.scope: trio.CancelScope | None = None
        # The coordinator's, not RunState's: the crew running the attempt, and how the
        # attempt ended. A worker writes these and sends the node itself to the
        # coordinator, so that ending an attempt allocates nothing (the garbage
        # collector runs in proportion to allocations; see `Crews._work`).
        self.crew: Any = None
        #: what the action returned (a `NodeOutput` or a plain value), or CANCELLED_ATTEMPT
        self.result: Any = None
        #: why the attempt failed: the exception it raised, a message (a timeout), or None
        self.fault: BaseException | str | None = None
        #: READY, and set aside in `RunState.parked` because its branch is paused
        self.parked = False
        #: the formatted traceback of the last failed attempt that raised
        self.traceback: str | None = None
        # Ranked scheduling (see `Policy`): its live heap entry, its remaining path in
        # estimated seconds (``order="critical_path"``), the resources an attempt holds
        # (empty without ``limits``), and whether it is READY but set aside until one
        # of them is free.
        self.entry: tuple[int, float, int, Node] | None = None
        self.rank = 0.0
        self.uses: Mapping[str, int] = EMPTY

    @property
    def ref(self) -> NodeRef:
        """This node as a `NodeRef`, made the first time an event needs it.

        A run that nobody listens to builds no events, so it never needs one.
        """
        ref = self._ref
        if type(ref) is str:
            made = self._ref = NodeRef(ref, self.id)
            return made
        return ref  # type: ignore[return-value]

    @property
    def dag(self) -> str:
        """The name of the run's DAG."""
        ref = self._ref
        return ref if isinstance(ref, str) else ref.dag

    # Flags that are seldom set, in one int: a slot each cost 8 bytes a node, and no
    # hot path reads them.
    cached = _Flag(1, "Succeeded by reusing a cached result (a hit of the run's `MemoPolicy`).")
    on_hold = _Flag(2, "FAILED, and held for a decision (``on_failure='hold'``).")
    supplied = _Flag(4, "SUCCEEDED with outputs a person supplied (`CompleteNode`).")
    blocked = _Flag(8, "READY, but set aside until a resource it uses is free (`Policy`).")

    def record(self) -> NodeRecord:
        spec = self.spec
        # Positional: a report builds one per node, and keywords cost a third more.
        return NodeRecord(
            self.id,
            spec.action,
            self.branch,
            spec.deps,
            self.status,
            self.attempts,
            self.started_at,
            self.finished_at,
            self.error,
            self.outputs,
            # A hit whose node was cancelled meanwhile (its branch, the run) did not count.
            self.cached and self.status is SUCCEEDED,
            self.traceback,
            self.ended,
            self.supplied,
            self.on_hold,
        )


#: batches of at least this many specs are added with the garbage collector paused


class Records(Mapping[str, NodeRecord]):
    """``RunReport.nodes`` of a finished run: each `NodeRecord` made on access.

    Read-only and final like a dict of records, equal to one with the same items; it
    pickles as one (the nodes it reads hold actions and other live objects).
    """

    __slots__ = ("_nodes",)

    def __init__(self, nodes: dict[str, Node]) -> None:
        self._nodes = nodes

    def __getitem__(self, node_id: str) -> NodeRecord:
        return self._nodes[node_id].record()

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (list(self.items()),))
