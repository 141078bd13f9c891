"""What every part of the state holds: the fields of `RunState`, set up once.

`RunState` is put together from one class per concern (growth, attempts, branches,
commands), each in a module of its own, all over these fields. The methods each of them
calls on another are declared here for the type checkers only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from .._actions.placement import Placement
from .._actions.registry import ActionRegistry
from .._model.events import ExecutionEvent
from .._model.spec import NodeStatus
from .node import Node
from .protocols import MemoPolicy, Recorder

__all__ = ["Rejected", "StateData"]

PENDING = NodeStatus.PENDING
READY = NodeStatus.READY
RUNNING = NodeStatus.RUNNING
SUCCEEDED = NodeStatus.SUCCEEDED
FAILED = NodeStatus.FAILED
CANCELLED = NodeStatus.CANCELLED
SKIPPED = NodeStatus.SKIPPED


class Rejected(Exception):
    """A command cannot be applied; ``reason`` goes into `CommandRejected`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StateData:
    """The fields of a run's state (see `RunState` for what they are for)."""

    def __init__(
        self,
        registry: ActionRegistry,
        *,
        dag_name: str,
        run_id: str,
        emit: Callable[[ExecutionEvent], None],
        retry_later: Callable[[Node, float], trio.CancelScope],
        now: Callable[[], float],
        placement: Placement | None = None,
        hold_failures: bool = False,
        order: str = "fifo",
        limits: Mapping[str, int] | None = None,
        estimates: Mapping[str, float] | None = None,
    ) -> None:
        self.registry = registry
        #: where nodes run: the run's executors (see `Placement`)
        self.placement = placement if placement is not None else Placement({})
        self.dag_name = dag_name
        self.run_id = run_id
        self.emit = emit
        self.retry_later = retry_later
        self.now = now
        self.nodes: dict[str, Node] = {}
        #: outputs of every succeeded node: ``ctx.cache``
        self.outputs: dict[str, Any] = {}
        #: nodes that may start now, in the order they became ready, and ``stale``
        #: entries among them: nodes cancelled while queued, dropped when they come up
        #: (taking each out at once would cost the length of the queue)
        self.ready: deque[Node] = deque()
        self.stale = 0
        # Ranked scheduling (see `Policy`): the heap of ready entries that replaces the
        # deque once the run ranks, the count of entries pushed, each action's
        # estimated seconds per attempt (from the journal), and whether ranks are
        # remaining paths (``order="critical_path"``) or all 0.
        self.ranked = False
        self.heap: list[tuple[int, float, int, Node]] = []
        self.seq = 0
        self.estimates: dict[str, float] = dict(estimates or {})
        self.critical_path = order == "critical_path"
        # Resources (``limits``): what is free of each, the nodes set aside waiting
        # for one, by the resource they lack, and how many those are.
        self.limits: dict[str, int] = dict(limits or {})
        self.free: dict[str, int] = dict(self.limits)
        self.blocked: dict[str, list[Node]] = {}
        self.blocked_count = 0
        #: whether a node's ``uses`` is checked against the limits (see `read_only`)
        self.checks_uses = True
        if self.critical_path or self.limits:
            self.ranked = True
        #: ready nodes parked because their branch is paused, by branch, so that resuming a
        #: branch costs what it holds; ``parked_count`` of them are still READY
        self.parked: dict[str, list[Node]] = {}
        self.parked_count = 0
        self.running = 0
        #: nodes waiting out a retry delay
        self.delayed = 0
        #: nodes not yet in a final state
        self.unfinished = 0
        # The branches, indexed so that a branch command costs what its branch holds,
        # not what the graph holds (one approval per tool call, paused and resumed one
        # by one, was quadratic): every node by its branch, the tree of branch names
        # (each named branch to those directly below it that hold nodes or pauses), and
        # the branches with a node on or below them (to tell a known branch from a typo).
        self.branch_nodes: dict[str, list[Node]] = {}
        self.children: dict[str, list[str]] = {}
        self.populated: set[str] = set()
        self.paused: dict[str, str | None] = {}
        self.cancelled: dict[str, str | None] = {}
        #: ``on_failure="hold"``: a final failure holds its node for a decision
        self.hold_failures = hold_failures
        #: failed nodes held for a decision (`RetryNode`, `CompleteNode`), by id
        self.on_hold: dict[str, Node] = {}
        #: deferred nodes whose deps succeeded, waiting for their branch to be quiet,
        #: by id (see `Deferral`), and the ids of those released since
        self.deferred: dict[str, Node] = {}
        self.released: set[str] = set()
        #: once a deferred node was due: the unfinished nodes of each branch, and a
        #: count of changes to them (a quiet check that failed need not run again
        #: until it moves)
        self.deferring = False
        self.open: dict[str, set[Node]] = {}
        self.changes = 0
        #: why the run stopped starting nodes (shutdown, fail_fast), once it has
        self.stopped: str | None = None
        #: whether anyone receives events; while nobody does, the per-node events of
        #: the hot path (`NodeAdded`, `NodeStarted`, `NodeCompleted`) are not even built
        self.listening = True
        self.started_at = now()
        self.finished_at: float | None = None
        #: the time of the coordinator's current wake-up, read at its first use and
        #: cleared around every wait (`Loop._coordinate`): the starts and ends one
        #: wake-up applies share one clock read
        self.stamp: float | None = None
        self._next_auto_id = 0
        #: the run's journal side, when it has a journal: told of every added batch,
        #: applied command and final outcome before its event (see `Recorder`)
        self.recorder: Recorder | None = None
        #: the run's side of the cache, when the coordinator has one (see `MemoPolicy`)
        self.memo: MemoPolicy | None = None

    if TYPE_CHECKING:
        # Defined by one part, called by another.
        def _finish(self, node: Node, status: NodeStatus, error: str | None) -> None: ...
        def _release_dependents(self, node: Node) -> None: ...
        def _supply(self, node: Node, frozen: Any) -> None: ...
        def _skip(self, node: Node, cause: Node) -> None: ...
        def _skip_dependents(self, root: Node) -> None: ...
        def _make_ready(self, node: Node) -> None: ...
        def _park(self, node: Node) -> None: ...
        def _push(self, node: Node) -> None: ...
        def _next_ranked(self) -> Node | None: ...
        def _give_back(self, node: Node) -> None: ...
        def _rank_batch(self, batch: list[Node], order: list[int]) -> None: ...
        def rank_ready(self) -> None: ...
        def _paused_root(self, branch: str) -> str | None: ...
        def _cancelled_root(self, branch: str) -> str | None: ...
        def _populate(self, branch: str) -> None: ...
        def _register(self, branch: str) -> None: ...
        def _subtree(self, root: str) -> list[str]: ...
        def _release_parked(self, root: str) -> None: ...
        def _record(self, command: Any) -> None: ...
        def cancel_nodes(self, candidates: Iterable[Node], reason: str) -> None: ...
        def release_holds(self, nodes: list[Node] | None = None) -> None: ...
        def _unhold(self, node: Node) -> None: ...
        def _defer(self, node: Node) -> None: ...
        def _opened(self, node: Node) -> None: ...
        def _closed(self, node: Node) -> None: ...
        def prepare(self, specs: Sequence[Any]) -> Any: ...
        def add(self, prepared: Any) -> None: ...
