"""Attempts: ready queue, starts, attempt ends, retries, skips and final states."""

from __future__ import annotations

import logging
import math
import random
import traceback
from collections.abc import Sequence
from typing import Any

import trio

from .._errors import PermanentError, describe
from .._model.events import (
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeSkipped,
    node_completed,
    node_output,
    node_started,
)
from .._model.frozen import freeze
from .._model.spec import (
    Ending,
    NodeOutput,
    NodeSpec,
    NodeStatus,
)
from .base import (
    CANCELLED,
    FAILED,
    PENDING,
    READY,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    StateData,
)
from .node import CANCELLED_ATTEMPT, Node

__all__ = ["Attempts"]

logger = logging.getLogger("dagtrio")


class Attempts(StateData):
    """Attempts: ready queue, starts, attempt ends, retries, skips and final states."""

    # ------------------------------------------------------------------ scheduling

    def _make_ready(self, node: Node) -> None:
        if node.spec.defer and node.id not in self.released:
            self._defer(node)  # it fans in: it waits for its branch to be quiet
            return
        node.status = READY
        if self.paused and self._paused_root(node.branch) is not None:
            self._park(node)
        elif self.ranked:
            self._push(node)
        else:
            self.ready.append(node)

    def _park(self, node: Node) -> None:
        node.parked = True
        self.parked_count += 1
        parked = self.parked.get(node.branch)
        if parked is None:
            self.parked[node.branch] = [node]
        else:
            parked.append(node)

    def next_ready(self) -> Node | None:
        """Pop the next node allowed to start now, moving paused ones aside."""
        if self.ranked:
            return self._next_ranked()
        ready = self.ready
        while ready:
            node = ready.popleft()
            if node.status is not READY:
                self.stale -= 1  # cancelled while queued
                continue
            if self.paused and self._paused_root(node.branch) is not None:
                self._park(node)
                continue
            return node
        return None

    def has_ready(self) -> bool:
        """Whether a node is READY and not held back by a pause (or a resource)."""
        return self.ready_count() > 0

    def ready_count(self) -> int:
        """Nodes READY in the queue: neither parked by a pause nor set aside for a
        resource."""
        return (len(self.heap) if self.ranked else len(self.ready)) - self.stale

    def start(self, node: Node, scope: trio.CancelScope) -> None:
        """Mark ``node`` running under ``scope`` (the coordinator starts its worker).

        ``scope`` is shared by every running node of the node's branch (see
        `cancel_nodes`).
        """
        node.status = RUNNING
        node.attempts += 1
        node.scope = scope
        if node.started_at is None:
            t = self.stamp
            if t is None:
                t = self.stamp = self.now()
            node.started_at = t
        self.running += 1
        if self.listening:
            self.emit(node_started(node.ref, node.attempts))

    def attempt_done(self, node: Node, result: Any, fault: BaseException | str | None) -> None:
        """Apply the end of one attempt reported by a worker.

        ``result`` is what the action returned: a `NodeOutput`, or a plain value that
        means ``NodeOutput.ok(value)`` (wrapped here only if an event needs it), or
        `CANCELLED_ATTEMPT`; ``fault`` says why the attempt failed: the exception it
        raised, or a message (a timeout).
        """
        self.running -= 1
        node.scope = None
        if node.uses:
            self._give_back(node)
        if node.status is not RUNNING:
            # Already final: its branch (or the run) was cancelled while it ran, and that
            # decision stands even if the action managed to finish first.
            return
        if result is CANCELLED_ATTEMPT:
            node.ended = self.placement.ending(node)
            self._finish(node, CANCELLED, "cancelled")
            self.emit(NodeCancelled(node.ref, "cancelled", node.ended))
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
            if node.ended is not None:
                node.ended = None
            if output is not None and output.metadata and "cache_key" in output.metadata:
                node.cached = output.metadata.get("cached") is True  # a hit of `MemoPolicy`
            # `_finish`, inlined: the hot path of every success (a running node is in no
            # queue to be counted out of).
            node.status = SUCCEEDED
            node.error = None
            t = self.stamp
            if t is None:
                t = self.stamp = self.now()
            node.finished_at = t
            self.unfinished -= 1
            if self.deferring:
                self._closed(node)
            if self.recorder is not None:
                self.recorder.outcome(node)
            # Read-only from here on: dependents, hooks and the report share them.
            frozen = outputs if outputs is None else freeze(outputs)
            node.outputs = frozen
            self.outputs[node.id] = frozen
            if self.listening:
                if output is None or frozen is not outputs:
                    output = node_output(frozen, True, None if output is None else output.metadata)
                self.emit(node_completed(node.ref, output))
            # `_release_dependents`, inlined, and `_make_ready` for the common case: a
            # dependent that does not defer, with no pause to be parked for.
            dependents = node.dependents
            if dependents:
                plain = not self.paused and not self.ranked
                ready = self.ready
                for dependent in dependents:
                    dependent.waiting -= 1
                    if dependent.waiting == 0 and dependent.status is PENDING:
                        if plain and not dependent.spec.defer:
                            dependent.status = READY
                            ready.append(dependent)
                        else:
                            self._make_ready(dependent)
                node.dependents = ()
            return
        exc: BaseException | None = None
        if isinstance(fault, BaseException):
            exc = fault
            error = describe(exc)
            if not isinstance(exc, Exception):
                # Only a Cancelled gets here (see `Crews._work`): one the action raised
                # itself, out of the cancel scope it belonged to.
                error += (
                    " (the action raised trio.Cancelled outside the cancel scope it belongs"
                    " to: re-raise a Cancelled only where it was caught)"
                )
            node.traceback = "".join(traceback.format_exception(exc))
        else:
            node.traceback = None
            if fault is not None:
                # A message: the attempt timed out, and its work ended as its executor
                # says (killed, abandoned, or stopped in its Trio task).
                node.ended = self.placement.ending(node)
                self._failed_attempt(node, fault, None, timed_out=True)
                return
            if error is None:
                assert output is not None  # a plain value is a success
                error = output.error or "action reported failure"
                if not output.retry:
                    node.ended = None
                    self._failed_attempt(node, error, None, final="returned with retry=False")
                    return
        node.ended = None
        self._failed_attempt(node, error, exc)

    def _supply(self, node: Node, frozen: Any) -> None:
        """``node`` (unfinished) succeeds with outputs given by hand (`CompleteNode`,
        ``resume(outputs=...)``), read-only already. Its record says supplied."""
        node.supplied = True
        node.traceback = None
        node.ended = None
        self._finish(node, SUCCEEDED, None)
        node.outputs = frozen
        self.outputs[node.id] = frozen
        self.emit(NodeCompleted(node.ref, NodeOutput(frozen, True, {"supplied": True})))
        self._release_dependents(node)

    def _release_dependents(self, node: Node) -> None:
        """``node`` succeeded: each dependent has one dep fewer to wait for."""
        for dependent in node.dependents:
            dependent.waiting -= 1
            if dependent.waiting == 0 and dependent.status is PENDING:
                self._make_ready(dependent)
        node.dependents = ()

    def _failed_attempt(
        self,
        node: Node,
        error: str,
        exc: BaseException | None,
        *,
        timed_out: bool = False,
        final: str | None = None,
    ) -> None:
        """One attempt failed: retry it, or end the node (``final`` says why it may not
        be retried, when something other than its ``try_count`` decided)."""
        spec = node.spec
        retry = final is None and node.attempts - node.first_try < spec.try_count
        if retry and (exc is not None or timed_out):
            final = self._not_retried(node, exc, error, timed_out)
            retry = final is None
        if retry and self.stopped is not None:
            self._log(logging.WARNING, node, error, exc, "; not retried: the run is stopping")
            self._finish(node, CANCELLED, f"{self.stopped} (before retrying: {error})")
            self.emit(NodeCancelled(node.ref, node.error, node.ended))  # type: ignore[arg-type]
            self._skip_dependents(node)
            return
        if retry:
            delay = self._retry_delay(node)
            self._log(logging.WARNING, node, error, exc, f"; retrying in {delay:g}s")
            node.error = error
            self.emit(NodeRetrying(node.ref, node.attempts, error, delay, node.ended))
            if delay > 0:
                node.status = PENDING
                self.delayed += 1
                node.scope = self.retry_later(node, delay)
            else:
                self._make_ready(node)
            return
        self._log(logging.ERROR, node, error, exc, f"; not retried: {final}" if final else "")
        if self.hold_failures and self.stopped is None:
            # Held for a decision: its dependents wait, and so does the run.
            node.on_hold = True
            self.on_hold[node.id] = node
            self._finish(node, FAILED, error)
            self.emit(NodeFailed(node.ref, error, node.traceback, node.ended))
            return
        self._finish(node, FAILED, error)
        self.emit(NodeFailed(node.ref, error, node.traceback, node.ended))
        self._skip_dependents(node)

    def _not_retried(
        self, node: Node, exc: BaseException | None, error: str, timed_out: bool
    ) -> str | None:
        """Why the failure ``exc`` (or a timeout) is not worth retrying, or None."""
        if isinstance(exc, PermanentError):
            return "PermanentError"
        retry_on = self.registry.retry_on(node.spec.action)
        if retry_on is None:
            return None
        judged: BaseException = TimeoutError(error) if timed_out else exc  # type: ignore[assignment]
        if isinstance(retry_on, tuple):
            if isinstance(judged, retry_on):
                return None
            return f"{type(judged).__name__} is not in retry_on"
        try:
            if retry_on(judged):
                return None
        except Exception as problem:
            # The policy is the action's code: its bug fails this node, not the run.
            return f"retry_on raised {describe(problem)}"
        return "retry_on said no"

    def _retry_delay(self, node: Node) -> float:
        """Seconds before the next attempt: doubling, capped, spread by the jitter."""
        spec = node.spec
        if not spec.retry_delay:
            return 0.0
        # 2.0 ** 1023 is the largest finite power of two: past it both int and float
        # powers raise OverflowError. The product may still saturate to inf, which
        # honestly means "wait forever", not a crash of the whole run.
        delay = spec.retry_delay * 2.0 ** min(node.attempts - node.first_try - 1, 1023)
        if spec.max_retry_delay is not None and delay > spec.max_retry_delay:
            delay = spec.max_retry_delay
        if spec.retry_jitter and delay != math.inf:
            # Seeded by what names the attempt: the same run id waits the same delays,
            # in tests under a MockClock and after a resume alike.
            draw = random.Random(f"{self.run_id}/{node.id}/{node.attempts}").random()
            delay *= 1.0 - spec.retry_jitter * draw
        return delay

    def _log(
        self, level: int, node: Node, error: str, exc: BaseException | None, then: str
    ) -> None:
        if logger.isEnabledFor(level):
            logger.log(
                level,
                "run %s: node %r attempt %d of %d failed: %s%s",
                self.run_id,
                node.id,
                node.attempts - node.first_try,
                node.spec.try_count,
                error,
                then,
                exc_info=exc,
                extra={
                    "dagtrio_event": "attempt_failed",
                    "dagtrio_run": self.run_id,
                    "dagtrio_dag": self.dag_name,
                    "dagtrio_node": node.id,
                    "dagtrio_action": node.spec.action,
                    "dagtrio_branch": node.branch,
                    "dagtrio_attempt": node.attempts,
                    "dagtrio_error": error,
                },
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
            # Still in the ready queue or the parked lists: it is dropped from there
            # when it comes up, and counted out now.
            if node.parked:
                node.parked = False
                self.parked_count -= 1
            elif node.blocked:
                node.blocked = False  # its resource's waiting list drops it then
                self.blocked_count -= 1
            else:
                self.stale += 1
        node.status = status
        node.error = error
        t = self.stamp
        if t is None:
            t = self.stamp = self.now()
        node.finished_at = t
        self.unfinished -= 1
        if self.deferring:
            self._closed(node)
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
        ended: Ending | None = None,
        held: bool = False,
        supplied: bool = False,
    ) -> None:
        """Put back a final outcome read from the journal, as if it had just happened.

        A node made final while replaying an earlier record (cancelled with its
        branch, skipped under a failed dep) gets what its own record, which the journal
        holds too, later, says: the live run may have ended it otherwise (all nodes
        cancelled at once, in an order that replay's cascade does not follow).
        """
        if supplied and node.on_hold:
            # Completed by hand while held: it comes off hold and succeeds.
            self._unhold(node)
            self.unfinished += 1
            node.status = PENDING
            if self.deferring:
                self._opened(node)
        if node.status.is_final:
            if status is SUCCEEDED and node.status is SUCCEEDED:
                # Supplied while replaying the re-run that supplied it: its record has
                # the times the live run gave it.
                node.attempts = attempts
                node.finished_at = finished_at
            elif status is not SUCCEEDED and node.status is not SUCCEEDED:
                node.status = status
                node.attempts = attempts
                node.started_at = started_at
                node.finished_at = finished_at
                node.error = error
                node.traceback = traceback
                node.ended = ended
            return
        node.attempts = attempts
        node.started_at = started_at
        node.traceback = traceback
        node.ended = ended
        if status is SUCCEEDED:
            self._finish(node, SUCCEEDED, None)
            outputs = freeze(outputs)
            node.outputs = outputs
            node.cached = cached
            node.supplied = supplied
            self.outputs[node.id] = outputs
            node.finished_at = finished_at
            self._release_dependents(node)
        elif held:
            node.on_hold = True
            self.on_hold[node.id] = node
            self._finish(node, status, error)
            node.finished_at = finished_at
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

    def _unhold(self, node: Node) -> None:
        node.on_hold = False
        del self.on_hold[node.id]
        self.changes += 1

    def drop_holds(self) -> None:
        """The run is over: no node is held any more (each stays FAILED as it is)."""
        for node in self.on_hold.values():
            node.on_hold = False
        self.on_hold.clear()

    def release_holds(self, nodes: list[Node] | None = None) -> None:
        """Nobody will decide any more (a shutdown, a cancelled branch): the held
        ``nodes`` (every held node, by default) stay FAILED and their dependents are
        skipped."""
        for node in list(self.on_hold.values()) if nodes is None else nodes:
            self._unhold(node)
            self._skip_dependents(node)

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


_PAST = {
    FAILED: "failed",
    CANCELLED: "was cancelled",
    SKIPPED: "was skipped",
}
