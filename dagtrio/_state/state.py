"""The state of one run: the only code that changes the graph.

`RunState` is owned by the coordinator task. Workers, hooks and applications never
touch it; they send messages that the coordinator turns into calls here. Methods are
synchronous and never block, so one command is applied whole before anything else
happens (no half-applied `AddNodes`). Each change announces itself through ``emit``, in
the order it happens, which is the run's one event order.
"""

from __future__ import annotations

import gc
import logging
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from .._actions.registry import ActionRegistry, NodeAction
from .._errors import InvalidGraphError, InvalidSpecError, describe
from .._model.commands import (
    AddNode,
    AddNodes,
    CancelBranch,
    EmitEvent,
    ExecutorCommand,
    PauseBranch,
    ResumeBranch,
    SetNodeInputs,
)
from .._model.events import (
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CommandRejected,
    CustomEvent,
    ExecutionEvent,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeSkipped,
    NodeStarted,
)
from .._model.frozen import freeze
from .._model.graph import batch_order
from .._model.report import NodeRecord, RunReport
from .._model.spec import (
    MAIN_BRANCH,
    NodeOutput,
    NodeSpec,
    NodeStatus,
    validate_branch,
)
from .node import CANCELLED_ATTEMPT, Node, Records
from .protocols import MemoPolicy, Recorder

__all__ = ["BULK", "Rejected", "RunState"]

logger = logging.getLogger("dagtrio")

PENDING = NodeStatus.PENDING
READY = NodeStatus.READY
RUNNING = NodeStatus.RUNNING
SUCCEEDED = NodeStatus.SUCCEEDED
FAILED = NodeStatus.FAILED
CANCELLED = NodeStatus.CANCELLED
SKIPPED = NodeStatus.SKIPPED


BULK = 1000


@contextmanager
def _collector_paused(size: int) -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch of ``size`` specs goes in.

    A big batch allocates a few objects per node, none of them garbage, in one
    synchronous burst. With the collector on, the burst sets off collection after
    collection, and full ones over the whole (growing) heap: adding a million nodes
    took 5 µs a node instead of 1.7, a fifth of the whole run. Paused, the collector
    looks at the new objects once, at its next collection. Nothing else runs in this
    thread meanwhile; other threads' garbage waits, uncollected, for as long as the
    batch takes. A collector the application had disabled stays disabled.
    """
    if size < BULK or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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


class Rejected(Exception):
    """A command cannot be applied; ``reason`` goes into `CommandRejected`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.define(slots=True)
class _Prepared:
    """A validated batch: specs with final ids, in dependency order, with branches."""

    specs: list[NodeSpec]
    order: list[int]
    branches: list[str]
    #: the auto-id counter after this batch; committed only if the batch is added
    next_auto_id: int
    #: the batch as the journal stores it (when there is a journal)
    encoded: str | None = None


class RunState:
    """Graph, statuses, ready queue and branch states of one run.

    ``emit`` receives every event as it happens. ``retry_later`` is called with a node
    whose next attempt must wait ``delay`` seconds, and returns the cancel scope of the
    timer it started: the coordinator owns timers.

    Everything here is written by this package only (``tests/test_ownership.py``):
    other rooms call the methods below.
    """

    def __init__(
        self,
        registry: ActionRegistry,
        *,
        dag_name: str,
        run_id: str,
        emit: Callable[[ExecutionEvent], None],
        retry_later: Callable[[Node, float], trio.CancelScope],
        now: Callable[[], float],
    ) -> None:
        self.registry = registry
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
        #: ready nodes held back by a paused branch, by their branch, so that resuming a
        #: branch costs what it holds; ``held_count`` of them are still READY
        self.held: dict[str, list[Node]] = {}
        self.held_count = 0
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
        #: why the run stopped starting nodes (shutdown, fail_fast), once it has
        self.stopped: str | None = None
        #: whether anyone receives events; while nobody does, the per-node events of
        #: the hot path (`NodeAdded`, `NodeStarted`, `NodeCompleted`) are not even built
        self.listening = True
        self.started_at = now()
        self.finished_at: float | None = None
        self._next_auto_id = 0
        #: the run's journal side, when it has a journal: told of every added batch,
        #: applied command and final outcome before its event (see `Recorder`)
        self.recorder: Recorder | None = None
        #: the run's side of the cache, when the coordinator has one (see `MemoPolicy`)
        self.memo: MemoPolicy | None = None

    # ------------------------------------------------------------------ growth

    def prepare(self, specs: Sequence[NodeSpec]) -> _Prepared:
        """Check a batch against the graph; raise `InvalidGraphError` if any part is bad.

        Changes nothing, so a rejected batch leaves no trace.
        """
        registry = self.registry
        nodes = self.nodes
        final: list[NodeSpec] = []
        #: batch id -> position in the batch
        batch_ids: dict[str, int] = {}
        # Ids the batch names itself, wherever they stand in it: an auto id must not take
        # one that a later spec of the same batch claims.
        explicit = {spec.id for spec in specs if spec.id is not None}
        auto = self._next_auto_id
        registered: set[str] = set()  # action names already found in the registry
        for spec in specs:
            if spec.action not in registered:
                if spec.action not in registry:
                    known = ", ".join(sorted(registry)) or "none"
                    raise InvalidGraphError(
                        spec.id, f"unknown action {spec.action!r} (registered: {known})"
                    )
                registered.add(spec.action)
            if spec.id is None:
                while True:
                    auto += 1
                    node_id = f"{spec.action}-{auto}"
                    if node_id not in nodes and node_id not in explicit:
                        break
                spec = attrs.evolve(spec, id=node_id)
                explicit.add(node_id)
            elif spec.id in nodes:
                raise InvalidGraphError(spec.id, "id is already in the graph")
            elif spec.id in batch_ids:
                raise InvalidGraphError(spec.id, "id appears twice in the batch")
            batch_ids[spec.id] = len(final)  # type: ignore[index]
            final.append(spec)
        # A batch that lists every dep before its dependents (generated graphs, most
        # planners) is already in dependency order and cannot hold a cycle: take it as it
        # is and spare the graph algorithm, the largest cost of a big batch.
        in_order = True
        for position, spec in enumerate(final):
            for dep in spec.deps:
                if dep == spec.id:
                    raise InvalidGraphError(spec.id, "depends on itself")
                dep_position = batch_ids.get(dep)
                if dep_position is None:
                    if dep not in nodes:
                        raise InvalidGraphError(spec.id, f"dep {dep!r} is not in the graph")
                elif dep_position > position:
                    in_order = False
        order = list(range(len(final))) if in_order else batch_order(final)
        if order and isinstance(order[0], str):
            # batch_order walks dep -> dependent; say it as "x depends on y".
            cycle = list(reversed(order))
            raise InvalidGraphError(
                str(cycle[0]), "deps form a cycle: " + " -> ".join(map(str, cycle))
            )
        branches: list[str] = [MAIN_BRANCH] * len(final)
        batch_branch: dict[str, str] = {}
        for i in order:
            spec = final[i]  # type: ignore[index]
            if spec.branch is not None:
                branch = spec.branch
            elif spec.deps:
                first = spec.deps[0]
                branch = batch_branch[first] if first in batch_branch else nodes[first].branch
            else:
                branch = MAIN_BRANCH
            branches[i] = branch  # type: ignore[index]
            batch_branch[spec.id] = branch  # type: ignore[index]
        encoded = None
        if self.recorder is not None:
            encoded = self.recorder.encode_batch(final, auto)
        return _Prepared(final, order, branches, auto, encoded)  # type: ignore[arg-type]

    def add(self, prepared: _Prepared) -> None:
        """Insert a batch checked by `prepare` (with no change to the graph in between)."""
        self._next_auto_id = prepared.next_auto_id
        nodes = self.nodes
        dag = self.dag_name
        registry = self.registry
        emit = self.emit
        listening = self.listening
        memo = self.memo
        branch_nodes = self.branch_nodes
        actions: dict[str, NodeAction] = {}
        batch: list[Node] = []
        if self.recorder is not None:
            assert prepared.encoded is not None  # `prepare` encodes when there is a recorder
            self.recorder.add(prepared.encoded, len(prepared.specs))
        last_branch: str | None = None
        on_branch: list[Node] = []
        for spec, branch in zip(prepared.specs, prepared.branches, strict=True):
            action = actions.get(spec.action)
            if action is None:
                action = actions[spec.action] = registry.get(spec.action)
            node = Node(spec, dag, branch, action)
            if memo is not None:
                cached_call = memo.wrap(node)
                if cached_call is not None:
                    node.call = cached_call
            nodes[node.id] = node
            if branch != last_branch:  # batches mostly keep to one branch
                last_branch = branch
                found = branch_nodes.get(branch)
                if found is None:
                    found = branch_nodes[branch] = []
                    self._populate(branch)
                on_branch = found
            on_branch.append(node)
            batch.append(node)
            if listening:
                emit(NodeAdded(node.ref, spec, branch))
        self.unfinished += len(batch)
        for i in prepared.order:
            node = batch[i]
            cancelled = self._cancelled_root(node.branch)
            if cancelled is not None or self.stopped is not None:
                why = self.stopped or f"branch {cancelled!r} was cancelled"
                self._finish(node, CANCELLED, why)
                emit(NodeCancelled(node.ref, why))
                continue
            doomed: Node | None = None
            for dep_id in node.spec.deps:
                dep = nodes[dep_id]
                if dep.status is not SUCCEEDED and dep.status.is_final:
                    doomed = dep
                    break
            if doomed is not None:
                self._skip(node, doomed)
                continue
            for dep_id in node.spec.deps:
                dep = nodes[dep_id]
                if dep.status is not SUCCEEDED:
                    node.waiting += 1
                    if isinstance(dep.dependents, list):
                        dep.dependents.append(node)
                    else:
                        dep.dependents = [node]
            if node.waiting == 0:
                self._make_ready(node)

    def announce(self) -> None:
        """Emit `NodeAdded` for every node so far: the initial ones, as the run starts.

        The initial specs are added (and checked) before anyone can listen, while
        nothing else can happen yet, so announcing them later in one go is the same
        stream a listener present all along would have seen.
        """
        emit = self.emit
        for node in self.nodes.values():
            emit(NodeAdded(node.ref, node.spec, node.branch))

    def add_initial(self, specs: Sequence[NodeSpec]) -> None:
        """Validate and insert the run's first specs; `InvalidGraphError` before anything runs.

        Emits nothing: `announce` tells of them once the run starts.
        """
        listening, self.listening = self.listening, False
        try:
            with _collector_paused(len(specs)):
                self.add(self.prepare(specs))
        finally:
            self.listening = listening

    # ------------------------------------------------------------------ wiring

    def listen(self, listening: bool) -> None:
        """Whether anyone receives events: while nobody does, the per-node events of
        the hot path are not even built."""
        self.listening = listening

    def attach(self, *, recorder: Recorder | None = None, memo: MemoPolicy | None = None) -> None:
        """Give the state the journal's recorder and the cache's memo, when the run has them."""
        if recorder is not None:
            self.recorder = recorder
        if memo is not None:
            self.memo = memo

    @contextmanager
    def muted(self) -> Iterator[None]:
        """Announce nothing meanwhile (a replay rebuilds the graph without events)."""
        emit, listening = self.emit, self.listening
        self.emit, self.listening = _silence, False
        try:
            yield
        finally:
            self.emit, self.listening = emit, listening

    def mute(self) -> None:
        """Announce nothing from now on: the run is over, nobody can receive."""
        self.emit, self.listening = _silence, False

    def abandon_attempts(self) -> None:
        """The run is over: workers and retry timers never report back, count them out."""
        self.running = self.delayed = 0

    def mark_finished(self) -> None:
        """The run ended now."""
        self.finished_at = self.now()

    def restore_times(self, started_at: float, finished_at: float | None = None) -> None:
        """The run's start (and end) as the journal recorded them."""
        self.started_at = started_at
        self.finished_at = finished_at

    def restore_stop(self, reason: str) -> None:
        """A shutdown (or fail_fast) had begun: nothing starts, later nodes are cancelled."""
        self.stopped = reason

    # ------------------------------------------------------------------ scheduling

    def _make_ready(self, node: Node) -> None:
        node.status = READY
        if self.paused and self._paused_root(node.branch) is not None:
            self._hold(node)
        else:
            self.ready.append(node)

    def _hold(self, node: Node) -> None:
        node.held = True
        self.held_count += 1
        held = self.held.get(node.branch)
        if held is None:
            self.held[node.branch] = [node]
        else:
            held.append(node)

    def next_ready(self) -> Node | None:
        """Pop the next node allowed to start now, moving paused ones aside."""
        ready = self.ready
        while ready:
            node = ready.popleft()
            if node.status is not READY:
                self.stale -= 1  # cancelled while queued
                continue
            if self.paused and self._paused_root(node.branch) is not None:
                self._hold(node)
                continue
            return node
        return None

    def has_ready(self) -> bool:
        """Whether a node is READY and not held back by a pause."""
        return len(self.ready) > self.stale

    def start(self, node: Node, scope: trio.CancelScope) -> None:
        """Mark ``node`` running under ``scope`` (the coordinator starts its worker).

        ``scope`` is shared by every running node of the node's branch (see
        `cancel_nodes`).
        """
        node.status = RUNNING
        node.attempts += 1
        node.scope = scope
        if node.started_at is None:
            node.started_at = self.now()
        self.running += 1
        if self.listening:
            self.emit(NodeStarted(node.ref, node.attempts))

    def upstream(self, node: Node) -> dict[str, Any]:
        outputs = self.outputs
        return {dep: outputs[dep] for dep in node.spec.deps}

    def attempt_done(self, node: Node, result: Any, fault: BaseException | str | None) -> None:
        """Apply the end of one attempt reported by a worker.

        ``result`` is what the action returned: a `NodeOutput`, or a plain value that
        means ``NodeOutput.ok(value)`` (wrapped here only if an event needs it), or
        `CANCELLED_ATTEMPT`; ``fault`` says why the attempt failed: the exception it
        raised, or a message (a timeout).
        """
        self.running -= 1
        node.scope = None
        if node.status is not RUNNING:
            # Already final: its branch (or the run) was cancelled while it ran, and that
            # decision stands even if the action managed to finish first.
            return
        if result is CANCELLED_ATTEMPT:
            self._finish(node, CANCELLED, "cancelled")
            self.emit(NodeCancelled(node.ref, "cancelled"))
            self._skip_dependents(node)
            return
        output: NodeOutput | None = result if isinstance(result, NodeOutput) else None
        error: str | None = None
        outputs = result if output is None else output.outputs
        succeeded = fault is None and (output is None or output.success)
        if succeeded and self.recorder is not None:
            error = self.recorder.take_outputs(node.id, outputs)
        if succeeded and error is None:
            node.traceback = None  # of an earlier attempt: before the outcome is recorded
            if output is not None and output.metadata and "cache_key" in output.metadata:
                node.cached = output.metadata.get("cached") is True  # a hit of `MemoPolicy`
            self._finish(node, SUCCEEDED, None)
            # Read-only from here on: dependents, hooks and the report share them.
            frozen = outputs if outputs is None else freeze(outputs)
            node.outputs = frozen
            self.outputs[node.id] = frozen
            if self.listening:
                if output is None or frozen is not outputs:
                    output = NodeOutput(frozen, True, None if output is None else output.metadata)
                self.emit(NodeCompleted(node.ref, output))
            for dependent in node.dependents:
                dependent.waiting -= 1
                if dependent.waiting == 0 and dependent.status is PENDING:
                    self._make_ready(dependent)
            node.dependents = ()
            return
        exc: BaseException | None = None
        if isinstance(fault, BaseException):
            exc = fault
            error = describe(exc)
            if not isinstance(exc, Exception):
                # Only a Cancelled gets here (see `Run._work`): one the action raised
                # itself, out of the cancel scope it belonged to.
                error += (
                    " (the action raised trio.Cancelled outside the cancel scope it belongs"
                    " to: re-raise a Cancelled only where it was caught)"
                )
            node.traceback = "".join(traceback.format_exception(exc))
        else:
            node.traceback = None
            if fault is not None:
                error = fault
            elif error is None:
                assert output is not None  # a plain value is a success
                error = output.error or "action reported failure"
        self._failed_attempt(node, error, exc)

    def _failed_attempt(self, node: Node, error: str, exc: BaseException | None) -> None:
        spec = node.spec
        retry = node.attempts < spec.try_count
        if retry and self.stopped is not None:
            self._log(logging.WARNING, node, error, exc, "; not retried: the run is stopping")
            self._finish(node, CANCELLED, f"{self.stopped} (before retrying: {error})")
            self.emit(NodeCancelled(node.ref, node.error))  # type: ignore[arg-type]
            self._skip_dependents(node)
            return
        if retry:
            # 2.0 ** 1023 is the largest finite power of two: past it both int and float
            # powers raise OverflowError. The product may still saturate to inf, which
            # honestly means "wait forever", not a crash of the whole run.
            delay = spec.retry_delay and spec.retry_delay * 2.0 ** min(node.attempts - 1, 1023)
            self._log(logging.WARNING, node, error, exc, f"; retrying in {delay:g}s")
            node.error = error
            self.emit(NodeRetrying(node.ref, node.attempts, error, delay))
            if delay > 0:
                node.status = PENDING
                self.delayed += 1
                node.scope = self.retry_later(node, delay)
            else:
                self._make_ready(node)
            return
        self._log(logging.ERROR, node, error, exc, "")
        self._finish(node, FAILED, error)
        self.emit(NodeFailed(node.ref, error, node.traceback))
        self._skip_dependents(node)

    def _log(
        self, level: int, node: Node, error: str, exc: BaseException | None, then: str
    ) -> None:
        if logger.isEnabledFor(level):
            logger.log(
                level,
                "run %s: node %r attempt %d of %d failed: %s%s",
                self.run_id,
                node.id,
                node.attempts,
                node.spec.try_count,
                error,
                then,
                exc_info=exc,
                extra={"dagtrio_run": self.run_id, "dagtrio_node": node.id},
            )

    def retry_due(self, node: Node) -> None:
        """A retry delay ended (timer fired); the node may start again."""
        if node.status is not PENDING:
            return  # cancelled while the timer's message was on its way; counted then
        self.delayed -= 1
        node.scope = None
        self._make_ready(node)

    def _finish(self, node: Node, status: NodeStatus, error: str | None) -> None:
        if node.status is READY:
            # Still in the ready queue or the held lists: it is dropped from there
            # when it comes up, and counted out now.
            if node.held:
                node.held = False
                self.held_count -= 1
            else:
                self.stale += 1
        node.status = status
        node.error = error
        node.finished_at = self.now()
        self.unfinished -= 1
        if self.recorder is not None:
            self.recorder.outcome(node)

    def restore(
        self,
        node: Node,
        status: NodeStatus,
        *,
        attempts: int,
        started_at: float | None,
        finished_at: float | None,
        error: str | None,
        outputs: Any,
        cached: bool = False,
        traceback: str | None = None,
    ) -> None:
        """Put back a final outcome read from the journal, as if it had just happened.

        A node made final while replaying an earlier record (cancelled with its
        branch, skipped under a failed dep) gets what its own record, which the journal
        holds too, later, says: the live run may have ended it otherwise (all nodes
        cancelled at once, in an order that replay's cascade does not follow).
        """
        if node.status.is_final:
            if status is not SUCCEEDED and node.status is not SUCCEEDED:
                node.status = status
                node.attempts = attempts
                node.started_at = started_at
                node.finished_at = finished_at
                node.error = error
                node.traceback = traceback
            return
        node.attempts = attempts
        node.started_at = started_at
        node.traceback = traceback
        if status is SUCCEEDED:
            self._finish(node, SUCCEEDED, None)
            outputs = freeze(outputs)
            node.outputs = outputs
            node.cached = cached
            self.outputs[node.id] = outputs
            node.finished_at = finished_at
            for dependent in node.dependents:
                dependent.waiting -= 1
                if dependent.waiting == 0 and dependent.status is PENDING:
                    self._make_ready(dependent)
            node.dependents = ()
        else:
            self._finish(node, status, error)
            node.finished_at = finished_at
            self._skip_dependents(node)

    def restore_auto_ids(self, specs: Sequence[NodeSpec], counter: int | None) -> None:
        """Set the automatic id counter as it was after a replayed batch.

        ``None`` (a journal of dagtrio before 0.2 did not store it): the highest number
        of an id of the automatic form ``<action>-<n>`` in the batch, which is what the
        counter was unless an explicit id took that form.
        """
        if counter is None:
            counter = self._next_auto_id
            for spec in specs:
                prefix, _, number = (spec.id or "").rpartition("-")
                if prefix == spec.action and number.isdigit():
                    counter = max(counter, int(number))
        self._next_auto_id = max(self._next_auto_id, counter)

    def _skip(self, node: Node, cause: Node) -> None:
        self._finish(node, SKIPPED, f"dep {cause.id!r} {_PAST[cause.status]}")
        self.emit(NodeSkipped(node.ref, node.error))  # type: ignore[arg-type]
        self._skip_dependents(node)

    def _skip_dependents(self, root: Node) -> None:
        # Iterative: a long chain under a failed node must not hit the recursion limit.
        stack = [root]
        while stack:
            cause = stack.pop()
            dependents, cause.dependents = cause.dependents, ()
            for node in dependents:
                if node.status.is_final:
                    continue
                self._finish(node, SKIPPED, f"dep {cause.id!r} {_PAST[cause.status]}")
                self.emit(NodeSkipped(node.ref, node.error))  # type: ignore[arg-type]
                stack.append(node)

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

    def _release_held(self, root: str) -> None:
        """Let the held nodes of ``root`` and below go (unless a pause above holds them)."""
        held = self.held
        for name in self._subtree(root):
            nodes = held.pop(name, None)
            if nodes is None:
                continue
            for node in nodes:
                if node.held:
                    node.held = False
                    self.held_count -= 1
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
            if node.scope is not None:
                node.scope.cancel()
                if status is PENDING:
                    # A retry timer's scope: it will not fire, so count it out now.
                    self.delayed -= 1
                    node.scope = None
            self._finish(node, CANCELLED, reason)
            self.emit(NodeCancelled(node.ref, reason))
        for node in victims:
            self._skip_dependents(node)

    def stop(self, reason: str) -> None:
        """Start nothing more: every node that is not running ends CANCELLED, now or when added."""
        self.stopped = reason
        self.cancel_nodes(
            [node for node in self.nodes.values() if node.status is not RUNNING], reason
        )

    # ------------------------------------------------------------------ commands

    def apply(self, command: ExecutorCommand) -> None:
        """Apply one command whole, or raise `Rejected` having changed nothing."""
        if command.dag_name is not None and command.dag_name != self.dag_name:
            raise Rejected(
                f"command is for DAG {command.dag_name!r}, this run is DAG {self.dag_name!r}"
            )
        match command:
            case AddNode(spec=spec):
                self._apply_add([spec])
            case AddNodes(specs=specs):
                if not specs:
                    return
                self._apply_add(specs)
            case SetNodeInputs(node_id=node_id, inputs=inputs):
                self._set_inputs(node_id, inputs)
            case PauseBranch(branch=branch, reason=reason):
                branch = self._branch_arg(branch)
                if self._cancelled_root(branch) is not None:
                    raise Rejected(f"branch {branch!r} is cancelled")
                self._record(command)
                self._register(branch)  # so that resuming a branch above finds it
                self.paused[branch] = reason
                self.emit(BranchPaused(branch, reason, branch in self.populated))
            case ResumeBranch(branch=branch):
                branch = self._branch_arg(branch)
                root = self._cancelled_root(branch)
                if root is not None:
                    raise Rejected(f"branch {branch!r} was cancelled (as part of {root!r})")
                self._record(command)
                # Resuming a branch lifts pauses on it and on every branch below it; a
                # pause on a branch above it still holds (resume that one instead).
                below = self._subtree(branch)
                if self.paused:
                    for name in below:
                        self.paused.pop(name, None)
                self.emit(BranchResumed(branch, branch in self.populated))
                self._release_held(branch)
            case CancelBranch(branch=branch, reason=reason):
                branch = self._branch_arg(branch)
                self._record(command)
                self.cancelled[branch] = reason
                below = self._subtree(branch)
                for name in below:
                    self.paused.pop(name, None)
                    self.held.pop(name, None)  # cancelled below: counted out as they go
                self.emit(BranchCancelled(branch, reason, branch in self.populated))
                why = f"branch {branch!r} was cancelled" + (f": {reason}" if reason else "")
                branch_nodes = self.branch_nodes
                self.cancel_nodes(
                    [node for name in below for node in branch_nodes.get(name, ())], why
                )
            case EmitEvent(event=event):
                if not isinstance(event, CustomEvent):
                    raise Rejected(
                        f"only CustomEvent can be emitted, not {type(event).__name__}: "
                        "lifecycle events come from the coordinator alone"
                    )
                self._record(command)
                self.emit(event)
            case _:
                raise Rejected(f"{type(command).__name__} is not a command this run knows")

    def reject(self, command: ExecutorCommand, reason: str) -> None:
        self.emit(CommandRejected(command, reason))

    def _apply_add(self, specs: Sequence[NodeSpec]) -> None:
        with _collector_paused(len(specs)):
            try:
                prepared = self.prepare(specs)
            except InvalidGraphError as exc:
                raise Rejected(str(exc)) from None
            self.add(prepared)

    def _set_inputs(self, node_id: str, inputs: object) -> None:
        node = self.nodes.get(node_id) if isinstance(node_id, str) else None
        if node is None:
            raise Rejected(f"node {node_id!r} is not in the graph")
        if node.attempts or node.status.is_final:
            raise Rejected(f"node {node_id!r} has already started ({node.status.value})")
        if not isinstance(inputs, Mapping):
            raise Rejected(
                f"node {node_id!r}: inputs must be a mapping, got {type(inputs).__name__}"
            )
        try:
            spec = attrs.evolve(node.spec, inputs=inputs)
        except InvalidSpecError as exc:
            raise Rejected(str(exc)) from None
        self._record(SetNodeInputs(node_id, spec.inputs))
        node.spec = spec

    def _record(self, command: ExecutorCommand) -> None:
        """Journal a command about to be applied; `Rejected` (nothing changed) if the
        journal cannot store it."""
        if self.recorder is not None:
            try:
                self.recorder.command(command)
            except (TypeError, ValueError) as exc:
                raise Rejected(f"cannot be stored in the journal: {exc}") from None

    @staticmethod
    def _branch_arg(branch: object) -> str:
        try:
            return validate_branch(branch)
        except InvalidSpecError as exc:
            raise Rejected(exc.reason) from None

    # ------------------------------------------------------------------ reporting

    def report(
        self, *, success: bool | None = None, error: str | None = None, final: bool = False
    ) -> RunReport:
        """The run's report: a copy of where every node stands now, or, once the run is
        over and no node can change any more (``final``), a view that builds each
        node's record when asked for it.

        Building a million records at the end of a run costs as much as a fifth of the
        run, most of it in the garbage collector, for a report that is often read only
        for ``success`` and a few nodes.
        """
        nodes: Mapping[str, NodeRecord]
        if final:
            nodes = Records(self.nodes)
        else:
            nodes = {node_id: node.record() for node_id, node in self.nodes.items()}
        if success is None:
            success = all(node.status is SUCCEEDED for node in self.nodes.values())
        return RunReport(
            run_id=self.run_id,
            dag_name=self.dag_name,
            success=success,
            nodes=nodes,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=error,
        )


def _silence(event: ExecutionEvent) -> None:
    pass


_PAST = {
    FAILED: "failed",
    CANCELLED: "was cancelled",
    SKIPPED: "was skipped",
}
