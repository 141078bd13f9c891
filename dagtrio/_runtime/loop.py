"""The coordinator task's loop: receive a message, apply it, start what may start.

The hot path of every run: `_coordinate` and `_dispatch` bind what they use to
locals, and an attempt's end is handled first of all messages."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import trio
from outcome import Value

from .._durable.recorder import BACKLOG_LIMIT
from .._errors import describe
from .._hooks.messages import EventsDone, HookCommands, HookCrashed
from .._model.commands import CompleteNode, ExecutorCommand, RetryNode
from .._model.events import HookFailed, NodeProgress, RunIdle
from .._model.spec import NodeStatus
from .._state.node import Node
from .._state.state import Rejected
from .base import RunData
from .context import LiveCtx, new_ctx, set_attempt, set_inputs, set_node, set_shared
from .crew import WORKER_NAME
from .messages import (
    GraceOver,
    HooksStarted,
    JournalFailed,
    JournalProgress,
    Progress,
    RetryDue,
    Shutdown,
    Submitted,
)

__all__ = ["Loop"]

logger = logging.getLogger("dagtrio")

#: commands that decide a held node: a run at rest after one says `RunIdle` again
_DECISIONS = frozenset({RetryNode, CompleteNode})

# Attempt ends the coordinator applies per wake-up, at most (see `Loop._coordinate`):
#: while the run keeps the thread busy
_ENDS_BUSY = 32
#: once the thread was seen idle while the coordinator waited
_ENDS_SPREAD = 4
#: seconds of idleness in one wait that make the run one of actions that wait
_IDLE = 50e-6
#: seconds without such a wait after which the run is taken to keep the thread busy
_IDLE_MEMORY = 1.0


class Loop(RunData):
    """The coordinator task's loop: receive a message, apply it, start what may start."""

    async def _coordinate(self) -> None:
        inbox = self._inbox
        handle = self._handle
        # Starts and ends applied in one wake-up share one clock read (`RunState.stamp`).
        clear_stamp = self._state.clear_stamp
        clock = self._clock
        now = clock.current_time
        cpu = time.thread_time
        # How many attempt ends to apply per wake-up before dispatching again (see below).
        per_wake = _ENDS_BUSY
        idle_at = -math.inf
        drained = True  # as far as we know: the first wait is measured too
        # The clocks when the coordinator last woke from a wait on an empty inbox.
        wall, busy = now(), cpu()
        while True:
            if self._hooks_started and self._stopping is None and not self._halted:
                # receive() may have let the scheduler run (after taking its message)
                # while the run was being cancelled from outside: the crews may be gone
                # already, and starting a worker in a closed nursery is an error.
                await trio.lowlevel.checkpoint_if_cancelled()
                self._dispatch()
            if self._is_finished():
                break
            if drained:
                # The inbox is empty, so this waits: measure whether the thread idled
                # meanwhile (the run's clock moved further than this thread's computing
                # moved it), or other tasks kept it busy until a message came. Trio's
                # MockClock moves only at its `rate` while tasks run (0 by default):
                # under it, time that passes is time every task waited. Measured from
                # the last such wake, not from just before this wait: what the
                # coordinator did since is computing, which the difference cancels,
                # and it saves two clock reads per wait (a chain waits once per node).
                clear_stamp()
                message = await inbox.receive()
                clear_stamp()
                woke, spent = now(), cpu()
                rate = getattr(clock, "rate", 1.0)
                if woke - wall - rate * (spent - busy) > _IDLE:
                    idle_at = woke
                    per_wake = _ENDS_SPREAD
                wall, busy = woke, spent
                drained = False
            else:
                clear_stamp()
                message = await inbox.receive()
                clear_stamp()
            if per_wake == _ENDS_SPREAD and now() - idle_at > _IDLE_MEMORY:
                per_wake = _ENDS_BUSY
            handle(message)
            # Apply more of what is already queued before dispatching again (fewer
            # wake-ups, fresher state), but only so many attempt ends: workers end
            # together, in the same scheduler batch, and answering a whole wave of ends
            # at once starts a whole wave of workers at once. Waves hurt twice:
            # - Actions that wait (sleep, I/O, threads) end together again, so the run
            #   alternates between a long batch of bookkeeping and an idle wait. Once
            #   the thread is seen idle, a few ends per wake-up spread the starts over
            #   many scheduler batches, and the bookkeeping overlaps the waiting
            #   (sleep:0.001 on layered 20k, max_parallel 64: 1.0 s with 32 per
            #   wake-up against trio-minimal's 0.85 s; 0.68 s with 4). Spread starts
            #   keep the thread busy, so the run stays in that mode until a second
            #   passes without an idle wait (0.1 s let waves form again).
            # - The swing in live objects sets off the cyclic garbage collector every
            #   wave: its trigger counts allocations minus deallocations (700 by
            #   default), and a wave of deallocations just after a collection is not
            #   counted. A worker's life makes about 11 such objects, most of them
            #   Trio's, so a wave of 64 crosses the line every time: 275 young, 24
            #   middle and one full collection (40 ms) per no-op 20k run; none with 32.
            # While the thread is never idle (short actions) spreading gains nothing
            # and every extra wake-up costs a scheduler batch: 32 ends per wake-up
            # instead of 4 saves 35 ms per 20k no-op nodes.
            # Other messages (acknowledgements, hook commands) start nothing by
            # themselves and are applied without limit.
            ends = per_wake - 1 if type(message) is Node else per_wake
            for _ in range(256):
                if not ends:
                    break
                try:
                    message = inbox.receive_nowait()
                except trio.WouldBlock:
                    drained = True
                    break
                handle(message)
                if type(message) is Node:
                    ends -= 1
        self._conclude()
        self._outbox.close()
        if self._grace_scope is not None:
            self._grace_scope.cancel()
        for crew in self._crews.values():
            crew.scope.cancel()  # idle by now: nothing runs

    def _dispatch(self) -> None:
        state = self._state
        if state.deferred:
            self._release_deferred()
        limit = self._max_parallel
        event_limit = self._event_limit
        work = self._work
        shared = self._shared
        crews = self._crews
        recorder = self._recorder
        if recorder is not None and recorder.backlog() >= BACKLOG_LIMIT:
            recorder.throttled = True  # it tells us when it has written some
            return
        next_ready = state.next_ready
        start = state.start
        reschedule = trio.lowlevel.reschedule
        started = False
        while state.running < limit and self._unacked < event_limit:
            node = next_ready()
            if node is None:
                break
            # A crew found here is never a cancelled one: crews are cancelled only with
            # their whole branch (whose nodes never start again) or once the run starts
            # no more nodes (see Crew).
            crew = crews.get(node.branch)
            if crew is None:
                crew = self._new_crew(node.branch)
            crew.running += 1
            node.crew = crew
            start(node, crew.scope)
            started = True
            # The context (see `LiveCtx`) and `Crew.start`, inlined: once per attempt.
            ctx = new_ctx(LiveCtx)
            set_node(ctx, node)
            set_attempt(ctx, node.attempts)
            set_inputs(ctx, node.spec.inputs)
            set_shared(ctx, shared)
            idle = crew.idle
            if idle:
                reschedule(idle.pop(), Value(ctx))  # a parked worker (see `Crews._work`)
            elif crew.nursery is None:
                crew.waiting.append(ctx)
            else:
                # An explicit name spares Trio working one out for every task.
                crew.nursery.start_soon(work, crew, ctx, name=WORKER_NAME)
        if started:
            self._idle = False

    def _release_deferred(self) -> None:
        """Let every due deferred node whose branch is quiet start (see `NodeSpec.defer`).

        Quiet takes two things: nothing below the branch can make progress (the
        state's `quiet`), and every event about the branch's nodes has passed every
        hook and reader, so no hook can still add to it. A node's first check waits for
        every event in flight then (events from before anyone watched the branch);
        from then on the latest event about the branch is tracked (`_emit`).
        """
        state = self._state
        through = self._pipelined - self._unacked
        barriers = self._defer_barriers
        checked = self._defer_checked
        last = self._branch_events
        released = []
        for node_id, node in list(state.deferred.items()):
            if node.status is not NodeStatus.PENDING or node.waiting:
                # Final meanwhile, or waiting for its deps again (a re-run): not due.
                del state.deferred[node_id]
                barriers.pop(node_id, None)
                checked.pop(node_id, None)
                continue
            barrier = barriers.get(node_id)
            if barrier is None:
                barrier = barriers[node_id] = self._pipelined
            if through < max(barrier, last.get(node.branch, 0)):
                continue  # a hook may still grow the branch
            if checked.get(node_id) == state.changes:
                continue  # nothing changed since it was found busy
            if state.quiet(node.branch):
                released.append(node)
            else:
                checked[node_id] = state.changes
        for node in released:
            del state.deferred[node.id]
            barriers.pop(node.id, None)
            checked.pop(node.id, None)
        # All at once, after every check: deferred nodes do not wait for each other.
        state.release_deferred(released)

    def _is_finished(self) -> bool:
        state = self._state
        if state.running or state.delayed or self._unacked or not self._hooks_started:
            return False
        if state.has_ready() and not self._halted:
            return False
        waiting = state.parked_count or state.on_hold or state.deferred
        if waiting and self._stopping is None and not self._halted:
            # Only paused or held work is left (a deferred node still due waits for a
            # pause or a hold in its branch, or it would have been released): a person
            # (or a hook answering RunIdle) must resume or decide it, so stay alive and
            # say so once.
            if not self._idle:
                self._idle = True
                self._emit(RunIdle(tuple(state.paused), tuple(state.on_hold)))
            return False
        stats = self._inbox.statistics()
        # Someone is still trying to reach us (a submit in flight): hear them out first.
        return not (stats.current_buffer_used or stats.tasks_waiting_send)

    def _handle(self, message: Any) -> None:
        state = self._state
        kind = type(message)
        if kind is Node:
            # A worker's attempt ended (see `_work`).
            node = message
            crew = node.crew
            crew.running -= 1
            if not crew.running and not crew.pooled:
                crew.pooled = True
                self._idle_crews.append(crew)
            # The fault may be an exception: dropped here, its frames with it.
            result, fault = node.result, node.fault
            node.result = node.crew = node.fault = None
            state.attempt_done(node, result, fault)
            if self._fail_fast and node.status is NodeStatus.FAILED:
                reason = f"fail_fast: node {node.id!r} failed: {node.error}"
                if self._error is None or self._stopping is not None:
                    self._error = self._error or reason
                # Even during a graceful shutdown, fail_fast means: stop now.
                self._begin_shutdown(0.0, reason)
        elif kind is EventsDone:
            self._events_done(message.count)
        elif kind is HookCommands:
            for command in message.commands:
                self._apply(command, message.hook)
            message.applied.set()
        elif kind is Submitted:
            self._apply_submitted(message)
        elif kind is Progress:
            if self._unacked < self._event_limit or not (self._hooks or self._readers):
                self._progress(message)
            else:
                # The pipeline is full: the emitting action waits, not the run.
                self._progress_waiting.append(message)
        elif kind is RetryDue:
            state.retry_due(message.node)
        elif kind is HooksStarted:
            self._hooks_started = True
            if self._recorder is not None and self._hooks and not self._on_start_done:
                # A resumed run calls on_start again only if this never got committed.
                self._recorder.mark("started")
        elif kind is HookCrashed:
            self._hook_crashed(message.hook, message.error, message.echo)
        elif kind is Shutdown:
            self._begin_shutdown(message.grace, message.reason)
            message.reply.set()
        elif kind is GraceOver:
            self._cancel_running()
        elif kind is JournalProgress:
            pass  # the backlog shrank: the loop dispatches again
        elif kind is JournalFailed:
            self._fail(message.error, str(message.error))
            self._halt()
        else:  # pragma: no cover - a bug in dagtrio, not in user code
            raise AssertionError(f"unexpected message {message!r}")

    def _progress(self, message: Progress) -> None:
        """Announce an action's progress, unless its attempt is over by now."""
        node = self._state.nodes.get(message.node_id)
        if (
            node is not None
            and node.status is NodeStatus.RUNNING
            and node.attempts == message.attempt
            and (self._state.listening or self._taps)
        ):
            self._emit(NodeProgress(node.ref, message.attempt, message.payload))
        message.reply.set()

    def _apply(self, command: ExecutorCommand, hook: str) -> None:
        try:
            self._state.apply(command)
        except Rejected as exc:
            self._state.reject(command, exc.reason)
        else:
            if type(command) in _DECISIONS:
                self._idle = False  # if the run comes to rest again, it says so again
            if self._instruments is not None:
                self._instruments.applied(command, hook)

    def _apply_submitted(self, message: Submitted) -> None:
        try:
            self._state.apply(message.command)
            if type(message.command) in _DECISIONS:
                self._idle = False
            if self._instruments is not None:
                self._instruments.applied(message.command, None)
        except Rejected as exc:
            self._state.reject(message.command, exc.reason)
            message.reason = exc.reason
        except BaseException as exc:  # pragma: no cover - a bug in dagtrio
            message.reason = f"internal error applying the command: {describe(exc)}"
            raise
        finally:
            # The submitter waits shielded: it must hear back whatever happened.
            message.reply.set()

    def _hook_crashed(self, name: str, error: BaseException, echo: bool) -> None:
        if self._isolate:
            if echo:
                logger.warning(
                    "run %s: hook %s raised on a HookFailed event: %s",
                    self.run_id,
                    name,
                    describe(error),
                    extra=self._log_fields("hook_failed", dagtrio_hook=name),
                )
            else:
                self._emit(HookFailed(name, describe(error)))
            return
        self._fail(error, f"hook {name} raised {describe(error)}")
        self._halt()
