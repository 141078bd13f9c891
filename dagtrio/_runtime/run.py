"""A run in progress: the public `Run` handle and the coordinator task behind it.

One coordinator task per run receives every message from one bounded inbox and is the
only caller of `RunState`. It never blocks on anything but that inbox, so workers, hook
stages and applications can always get their messages to it (see `_hooks.pipeline` for
why the event flow cannot deadlock). Each attempt runs in a worker task of its
branch's crew (`_Crew`), whose one cancel scope stops the branch's running nodes
together.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
import types
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from typing import Any

import attrs
import trio

from .._actions.registry import FunctionAction
from .._durable.memo import Memo
from .._durable.recorder import BACKLOG_LIMIT, RunRecorder
from .._durable.replay import replay, stored_state
from .._durable.sqlite import StoredRun
from .._errors import CommandRejectedError, JournalError, RunFinishedError, describe
from .._hooks.hook import HookContext, command_list, hook_name
from .._hooks.messages import EventsDone, HookCommands, HookCrashed, Reply
from .._hooks.pipeline import ChannelSource, Outbox, Reader, run_stage, run_tail
from .._hooks.stream import EventStream
from .._model.commands import ExecutorCommand
from .._model.events import CommandRejected, ExecutionEvent, HookFailed, RunIdle, RunResumed
from .._model.report import RunReport
from .._model.spec import NodeCtx, NodeSpec, NodeStatus, iter_specs
from .._state.node import CANCELLED_ATTEMPT, Node
from .._state.state import Rejected, RunState
from .._state.view import GraphView
from .._validate import check_seconds
from .messages import (
    GraceOver,
    HooksStarted,
    JournalFailed,
    JournalProgress,
    RetryDue,
    Shutdown,
    Submitted,
)
from .options import RunOptions

__all__ = ["CLEANUP_GRACE", "Run", "RunStatistics"]

logger = logging.getLogger("dagtrio")

#: attempt ends the coordinator applies per wake-up, at most (see `Run._coordinate`)
_ENDS_PER_WAKE = 4

#: how long hooks' ``on_complete`` may take when the run was cancelled from outside
CLEANUP_GRACE = 5.0


def _is_cancellation(exc: BaseException) -> bool:
    """True for `trio.Cancelled`, or a group holding nothing else (how a nursery ends)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


def _holds_cancellation(exc: BaseException) -> bool:
    """True for `trio.Cancelled`, or a group with one inside (the scope it is for takes it)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[0] is not None
    return isinstance(exc, trio.Cancelled)


@attrs.frozen
class RunStatistics:
    """A snapshot of a run's queues, for monitoring and for tests of boundedness."""

    nodes: int
    unfinished: int
    running: int
    ready: int
    held: int
    delayed: int
    #: events emitted but not yet through every hook and reader
    events_in_flight: int
    #: events waiting in the coordinator's outbox for the first stage
    outbox: int
    inbox_buffered: int
    readers: int


class Run:
    """A run in progress, handed out by `Coordinator.open_run`.

    Talk to it from your application: `submit` commands (an approval, a UI action),
    read `events`, look at `graph`, `shutdown` or `cancel` it, and `wait` for its report.
    """

    def __init__(
        self,
        options: RunOptions,
        specs: Iterable[NodeSpec],
        *,
        dag_name: str,
        run_id: str | None,
        stored: StoredRun | None = None,
    ) -> None:
        if not isinstance(dag_name, str) or not dag_name:
            raise ValueError(f"dag_name must be a non-empty string, got {dag_name!r}")
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise ValueError(f"run_id must be a non-empty string or None, got {run_id!r}")
        self._options = options
        self.run_id: str = run_id or uuid.uuid4().hex
        self.dag_name: str = dag_name
        self._hooks = options.hooks
        self._max_parallel = options.max_parallel
        self._event_limit = max(1, options.event_capacity)
        self._fail_fast = options.on_failure == "fail_fast"
        self._isolate = options.hook_errors == "isolate"
        self._app_data = options.app_data
        # Times in reports are epoch seconds that advance with Trio's clock (a MockClock
        # in tests), so durations are exact and reports stay meaningful.
        # The clock itself rather than trio.current_time(), which looks it up on every
        # call: report times are read twice per node.
        clock = trio.lowlevel.current_clock()
        offset = time.time() - clock.current_time()
        self._outbox = Outbox()
        self._readers: list[Reader] = []
        #: events put into the pipeline so far (a reader starts at the current count)
        self._pipelined = 0
        #: events in the pipeline that have not passed every hook and reader yet
        self._unacked = 0
        #: streams the open_run body opened in its own task; closed when it leaves
        self._body_streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._body_task: trio.lowlevel.Task | None = None
        self._state = RunState(
            options.registry,
            dag_name=dag_name,
            run_id=self.run_id,
            emit=self._emit,
            retry_later=self._retry_later,
            now=lambda: clock.current_time() + offset,
        )
        # Until a reader subscribes, only hooks listen (see RunState.listening).
        self._state.listen(bool(self._hooks))
        if options.cache is not None:
            self._state.attach(memo=Memo(options.cache, options.registry, self.run_id))
        # The initial nodes are announced only once the run starts, so a reader
        # subscribing first thing in the open_run body sees the same events with or
        # without hooks.
        self._recorder: RunRecorder | None = None
        self._resumed = stored is not None
        #: a resumed run whose hooks' on_start ran and had its commands committed
        self._on_start_done = False
        #: the reason of a shutdown (or fail_fast) that a resumed run had begun
        self._resumed_stop: str | None = None
        #: events to deliver first when resuming: (record seq, event)
        self._replayed: list[tuple[int, ExecutionEvent]] = []
        # With a journal and listeners, each event in the pipeline has a tag: the seq of
        # the last record when it was emitted (the record it announces). The journal's
        # `handled` mark is one below the lowest tag still in the pipeline, kept as a
        # sliding-window minimum: (position, tag) of the events whose tag is below that
        # of every later one, oldest first (see `_tag` and `_events_done`).
        self._floor: deque[tuple[int, int]] = deque()
        #: events tagged so far, and of those, events through the pipeline so far
        self._tagged = 0
        self._through = 0
        journal = options.journal
        if stored is not None:
            assert journal is not None
            # Replaying announces nothing: the events to deliver again are chosen
            # from the journal's mark (`_announce_resumed`).
            with self._state.muted():
                self._replayed = replay(self._state, stored)
            for _, kind, row in stored.records:
                if kind == "started":
                    self._on_start_done = True
                elif kind == "stop" and self._resumed_stop is None:
                    self._resumed_stop = json.loads(row["data"])
            self._state.restore_times(stored.info.started_at)
            last = stored.records[-1][0] if stored.records else 0
            self._recorder = RunRecorder(journal, self.run_id, start_seq=last)
            self._recorder.handled = stored.handled
            self._recorder.nodes = len(self._state.nodes)
            self._state.attach(recorder=self._recorder)
        else:
            if journal is not None:
                self._recorder = RunRecorder(journal, self.run_id)
                self._state.attach(recorder=self._recorder)
            self._state.add_initial(iter_specs(specs))
        if self._recorder is not None:
            self._outbox.journal = self._recorder
            self._recorder.on_progress = self._journal_progress
        self._go = trio.Event()
        self.graph = GraphView(self._state)
        """A live read-only view of the graph."""
        self._hook_ctx = HookContext(self.run_id, dag_name, self._app_data, self.graph)
        self._cache = types.MappingProxyType(self._state.outputs)
        self._inbox_send, self._inbox = trio.open_memory_channel[Any](options.command_capacity)
        self._nursery: trio.Nursery | None = None
        self._grace_scope: trio.CancelScope | None = None
        #: branch -> the crew its nodes run in
        self._crews: dict[str, _Crew] = {}
        #: crews that had nothing left to run when last heard of, oldest first: a new
        #: branch takes one over rather than starting a task of its own (a run with a
        #: branch per tool call would start and retire a crew per node)
        self._idle_crews: deque[_Crew] = deque()
        self._grace_deadline = math.inf
        self._grace = 0.0
        self._hooks_started = False
        #: set once no node may start any more: cancel(), a failing hook, the end
        self._halted = False
        self._stopping: str | None = None
        self._idle = False
        self._failure: BaseException | None = None
        self._error: str | None = None
        self._finished = False
        self._done = trio.Event()
        self._report: RunReport | None = None
        #: around the open_run body: cancelled when the run fails
        self._body_scope = trio.CancelScope()
        #: whether this process holds the run's claim in the journal (see `_release_claim`)
        self._claimed = False
        # Hooks' on_complete: the scope of the one running, whether `cancel` ended them,
        # and the deadline a `shutdown` set them.
        self._complete_scope: trio.CancelScope | None = None
        self._complete_cancelled = False
        self._complete_deadline = math.inf

    # ----------------------------------------------------------------- public API

    async def submit(self, command: ExecutorCommand) -> None:
        """Apply ``command`` to the run, through the same path as hook commands.

        Returns once the coordinator has applied it. A command it rejects raises
        `CommandRejectedError` (a `CommandRejected` event is emitted too, and the run
        goes on unchanged); a run that has ended raises `RunFinishedError`.

        Outside commands are applied as they arrive and are not held back while hooks
        or readers lag: the run cannot see which of your tasks its pipeline is waiting
        on (a reader that submits, a hook awaiting an approval that arrives here), and
        holding such a command back would deadlock. Backpressure reaches a submitter
        only through the bounded inbox; a task that floods a run with `EmitEvent`
        faster than its hooks read grows the event queue.
        """
        if not isinstance(command, ExecutorCommand):
            raise TypeError(f"submit() takes an ExecutorCommand, got {command!r}")
        if self._finished:
            raise RunFinishedError(f"run {self.run_id} has ended")
        # A cancellation point like any Trio call that may block, even though the wait
        # below cannot be one (and send_nowait is none).
        await trio.lowlevel.checkpoint_if_cancelled()
        message = Submitted(command, Reply())
        try:
            # Without send()'s own checkpoint when the inbox has room: the wait below
            # is one, and a trip through the scheduler is much of what submit costs.
            self._inbox_send.send_nowait(message)
        except trio.WouldBlock:
            try:
                await self._inbox_send.send(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise RunFinishedError(f"run {self.run_id} has ended") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise RunFinishedError(f"run {self.run_id} has ended") from None
        # Once sent, the command will be applied: wait for that even if cancelled, so a
        # cancelled submit either took effect and returned, or never reached the run.
        # This cannot hang: the coordinator answers without waiting on anyone, and a
        # run that ends answers every command it still holds.
        await message.reply.wait_uncancellable()
        if message.unapplied:
            raise RunFinishedError(f"run {self.run_id} ended before the command applied")
        if message.reason is not None:
            raise CommandRejectedError(command, message.reason)
        if self._recorder is not None:
            # With a journal, return only once the command is committed: an approval
            # acknowledged to a person must survive a crash right after.
            await self._recorder.wait_durable(self._recorder.seq)

    def events(self) -> EventStream:
        """A stream of every event from now on, in the run's order; it ends with the run.

        Subscribing happens in this call (not at the first read), so nothing emitted
        after it is missed, and nothing emitted before it is shown. Each stream holds at
        most ``event_capacity`` events, so a slow reader slows the run down. A stream
        opened by the ``open_run`` body's own task stops receiving when the body ends
        (what it already holds can still be read): that task can no longer read while
        the run goes on, and the run must not wait on it. To follow a run past the
        body, call ``run.events()`` in the task that reads.
        """
        send, receive = trio.open_memory_channel[ExecutionEvent](self._options.event_capacity)
        stream = EventStream(receive, send)
        if self._finished:
            send.close()
        else:
            self._readers.append(Reader(send, self._pipelined))
            self._state.listen(True)
            if self._body_task is not None and trio.lowlevel.current_task() is self._body_task:
                self._body_streams.add(stream)
        return stream

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop the run gracefully: start no new node, give running ones ``grace`` seconds.

        Nodes that never started end ``CANCELLED`` at once; actions still running when
        ``grace`` runs out are cancelled (``None``: wait for them however long they take).
        Returns once the shutdown is in force; ``await run.wait()`` for the end. Calling
        it again only ever shortens the grace. The grace bounds the hooks'
        ``on_complete`` too (counted from this call, like the nodes'), so a shutdown
        takes at most ``grace`` seconds; after the run ended it does nothing.
        """
        if grace is not None:
            grace = check_seconds("grace", grace, type_error=TypeError)
        if grace is not None and not self._done.is_set():
            # The grace covers the hooks' on_complete too, whether the nodes are still
            # running or have all ended: a hook that blocks there cannot outlast it.
            deadline = trio.current_time() + grace
            self._complete_deadline = min(self._complete_deadline, deadline)
            if self._complete_scope is not None:
                self._complete_scope.deadline = min(self._complete_scope.deadline, deadline)
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        message = Shutdown(
            math.inf if grace is None else float(grace), "shutdown requested", Reply()
        )
        try:
            await self._inbox_send.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await message.reply.wait()
        if self._recorder is not None:
            # Like submit: once this returns, a crash cannot undo the shutdown.
            with suppress(RunFinishedError):
                await self._recorder.wait_durable(self._recorder.seq)

    def cancel(self) -> None:
        """Cancel the run now: running actions are cancelled, nothing else starts.

        Unlike `shutdown` there is no grace and hooks see no more events; every node
        not yet final ends ``CANCELLED``, and hooks' ``on_complete`` are called in a
        cancelled scope (their synchronous cleanup runs, any wait is cancelled), also
        when every node had already ended. The report is still available from `wait`.
        """
        if not self._done.is_set():
            # Hooks' on_complete, now or once the nodes have ended, are cancelled too.
            self._complete_cancelled = True
            if self._complete_scope is not None:
                self._complete_scope.cancel()
        if self._finished:
            return
        if self._error is None:
            self._error = "run was cancelled"
        self._halt()

    async def wait(self) -> RunReport:
        """Wait for the run to end (hooks' ``on_complete`` included); return its report.

        Raises the hook's exception if a hook failed the run (``hook_errors="fail"``).
        Called in the ``open_run`` body, it detaches the streams the body opened, as
        leaving the body would: the body cannot read them while it waits.
        """
        if self._body_task is not None and trio.lowlevel.current_task() is self._body_task:
            self._leave_body()
        await self._done.wait()
        if self._failure is not None:
            raise self._failure
        return self.report()

    def report(self) -> RunReport:
        """The report: final once the run has ended, a snapshot (``success=False``) before."""
        if self._report is not None:
            return self._report
        return self._state.report(success=False)

    @property
    def finished(self) -> bool:
        """True once the run has ended and its hooks' ``on_complete`` have run."""
        return self._done.is_set()

    @property
    def idle(self) -> bool:
        """True while the run waits for a paused branch to be resumed (see `RunIdle`)."""
        return self._idle

    def statistics(self) -> RunStatistics:
        """Sizes of the run's queues right now (see `RunStatistics`)."""
        state = self._state
        return RunStatistics(
            nodes=len(state.nodes),
            unfinished=state.unfinished,
            running=state.running,
            ready=len(state.ready) - state.stale,
            held=state.held_count,
            delayed=state.delayed,
            events_in_flight=self._unacked,
            outbox=len(self._outbox),
            inbox_buffered=self._inbox.statistics().current_buffer_used,
            readers=len(self._readers),
        )

    def __repr__(self) -> str:
        status = "finished" if self._finished else "running"
        return f"<Run {self.dag_name!r} {self.run_id} {status}, {len(self._state.nodes)} nodes>"

    # ----------------------------------------------------------------- open_run's side

    @classmethod
    def _from_finished(cls, options: RunOptions, stored: StoredRun) -> Run:
        """A run the journal says had finished, handed over finished (nothing runs)."""
        info = stored.info
        run = cls(options, (), dag_name=info.dag_name, run_id=info.run_id)
        state = stored_state(stored)
        run._state = state
        run.graph = GraphView(state)
        run._hook_ctx = HookContext(run.run_id, run.dag_name, run._app_data, run.graph)
        run._cache = types.MappingProxyType(state.outputs)
        run._recorder = None
        run._error = info.error
        run._finished = run._halted = True
        run._inbox.close()
        run._report = state.report(success=bool(info.success), error=info.error, final=True)
        run._done.set()
        return run

    def _release_claim(self) -> None:
        """Let the run be resumed elsewhere: it stopped in this process (or never started)."""
        if self._claimed:
            self._claimed = False
            journal = self._options.journal
            assert journal is not None
            journal._release(self.run_id)

    def _fail(self, error: BaseException, message: str | None) -> None:
        """The run fails with ``error`` (the first failure wins): leaving open_run raises
        it, so the body is cancelled now rather than left to run on."""
        if self._failure is None:
            self._failure = error
            if message is not None:
                self._error = message
        self._body_scope.cancel()

    def _enter_body(self) -> None:
        self._body_task = trio.lowlevel.current_task()
        self._go.set()

    def _leave_body(self) -> None:
        self._body_task = None
        for stream in list(self._body_streams):
            stream.detach()

    # ----------------------------------------------------------------- the run's tasks

    async def _serve(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                # open_run sets this right before handing the run to its body, and the
                # body runs on up to its first checkpoint before we do: a reader that
                # subscribes there misses nothing.
                await self._go.wait()
                recorder = self._recorder
                if recorder is not None:
                    nursery.start_soon(self._serve_journal, recorder)
                if self._hooks or self._readers:
                    if self._resumed:
                        self._announce_resumed()
                    else:
                        self._state.announce()
                if self._resumed_stop is not None:
                    # Its grace period did not survive the crash: what was running then
                    # (and runs again now only if something starts it) is cancelled.
                    self._begin_shutdown(0.0, self._resumed_stop)
                nursery.start_soon(self._start_pipeline, nursery)
                await self._coordinate()
                self._conclude()
                if recorder is not None:
                    state = self._state
                    # The end the live report says, so that a stored report equals it.
                    end = state.finished_at or state.now()
                    recorder.close((end, self._report.success, self._error))  # type: ignore[union-attr]
        except BaseException as exc:
            if self._error is None:
                self._error = (
                    "run was cancelled"
                    if _is_cancellation(exc)
                    else f"run crashed: {describe(exc)}"
                )
            if self._recorder is not None and not self._finished:
                # Torn down from outside (the process is going away, as far as the run
                # can tell): keep what was recorded, record nothing of the teardown,
                # and leave the run resumable.
                self._recorder.freeze()
                with trio.move_on_after(CLEANUP_GRACE, shield=True):
                    with suppress(JournalError):
                        await self._recorder.flush()
            self._conclude()
            await self._complete_hooks(cancelled=True)
            raise
        else:
            self._conclude()
            await self._record_end()
            await self._complete_hooks(cancelled=False)
        finally:
            self._release_claim()
            self._done.set()

    async def _record_end(self) -> None:
        """Record the end of a run that stopped itself (`cancel`, a failing hook).

        Those cancel the run's nursery, the journal's writer with it, before the
        normal end is recorded; they are still the run's own end, not a crash, so the
        run must not be left resumable.
        """
        recorder = self._recorder
        if recorder is None or recorder.closed or recorder.frozen or recorder.failure:
            return
        report = self._report
        assert report is not None
        recorder.close((self._state.finished_at or self._state.now(), report.success, self._error))
        with trio.move_on_after(CLEANUP_GRACE, shield=True):
            try:
                await recorder.flush()
            except JournalError as exc:
                self._fail(exc, None)

    def _announce_resumed(self) -> None:
        """A resumed run's first events: `RunResumed`, then those hooks may have missed."""
        self._emit(RunResumed())
        recorder = self._recorder
        assert recorder is not None
        for seq, event in self._replayed:
            self._outbox.put(event)
            self._pipelined += 1
            self._unacked += 1
            self._tag(seq)
        self._replayed = []

    async def _start_pipeline(self, nursery: trio.Nursery) -> None:
        """Run every hook's ``on_start`` in order, then the pipeline's stages."""
        inbox = self._inbox_send
        for hook in () if self._on_start_done else self._hooks:
            name = hook_name(hook)
            try:
                commands = command_list(await _settle(hook.on_start(self._hook_ctx)), name)
            except Exception as exc:
                await inbox.send(HookCrashed(name, exc))
                if not self._isolate:
                    return
            else:
                if commands:
                    applied = Reply()
                    await inbox.send(HookCommands(name, commands, applied))
                    await applied.wait()
        await inbox.send(HooksStarted())
        source: Any = self._outbox
        capacity = self._options.event_capacity
        for hook in self._hooks:
            sink, receive = trio.open_memory_channel[ExecutionEvent](capacity)
            nursery.start_soon(
                run_stage,
                hook,
                hook_name(hook),
                self._hook_ctx,
                source,
                sink,
                inbox,
                self._isolate,
            )
            source = ChannelSource(receive)
        nursery.start_soon(run_tail, source, self._readers, inbox)

    async def _coordinate(self) -> None:
        inbox = self._inbox
        handle = self._handle
        while True:
            if self._hooks_started and self._stopping is None and not self._halted:
                # receive() may have let the scheduler run (after taking its message)
                # while the run was being cancelled from outside: the crews may be gone
                # already, and starting a worker in a closed nursery is an error.
                await trio.lowlevel.checkpoint_if_cancelled()
                self._dispatch()
            if self._is_finished():
                break
            handle(await inbox.receive())
            # Apply more of what is already queued before dispatching again (fewer
            # checkpoints, fresher state), but at most a few attempt ends: workers end
            # together, in the same scheduler batch, and answering a whole wave of ends
            # at once starts a whole wave of workers at once. Waves hurt twice:
            # - Sleeping actions wake together again, so the run alternates between a
            #   long batch of bookkeeping and an idle wait (sleep:0.001 on layered 20k,
            #   max_parallel 64: 1.0 s against trio-naive's 0.7 s; 0.62 s with 4).
            # - The swing in live objects sets off the cyclic garbage collector every
            #   wave: its trigger counts allocations minus deallocations, and a wave of
            #   deallocations just after a collection is not counted (no-op actions:
            #   340 young and 2-3 full collections per run instead of 75 and 0-1).
            # Other messages (acknowledgements, hook commands) start nothing by
            # themselves and are applied without limit.
            ends = _ENDS_PER_WAKE
            for _ in range(256):
                try:
                    message = inbox.receive_nowait()
                except trio.WouldBlock:
                    break
                handle(message)
                if type(message) is Node:
                    ends -= 1
                    if not ends:
                        break
        self._conclude()
        self._outbox.close()
        if self._grace_scope is not None:
            self._grace_scope.cancel()
        for crew in self._crews.values():
            crew.scope.cancel()  # idle by now: nothing runs

    def _dispatch(self) -> None:
        state = self._state
        limit = self._max_parallel
        event_limit = self._event_limit
        work = self._work
        crews = self._crews
        recorder = self._recorder
        if recorder is not None and recorder.backlog() >= BACKLOG_LIMIT:
            recorder.throttled = True  # it tells us when it has written some
            return
        while state.running < limit and self._unacked < event_limit:
            node = state.next_ready()
            if node is None:
                return
            # A crew found here is never a cancelled one: crews are cancelled only with
            # their whole branch (whose nodes never start again) or once the run starts
            # no more nodes (see _Crew).
            crew = crews.get(node.branch)
            if crew is None:
                crew = self._new_crew(node.branch)
            crew.running += 1
            node.crew = crew
            state.start(node, crew.scope)
            self._idle = False
            spec = node.spec
            ctx = NodeCtx(
                state.dag_name,
                node.id,
                state.run_id,
                spec.inputs,  # read-only already (see `_model.frozen`)
                state.upstream(node),
                node.attempts,
                self._cache,
                self._app_data,
                node.branch,
            )
            crew.start(work, node, ctx)

    def _new_crew(self, branch: str) -> _Crew:
        crews = self._crews
        pool = self._idle_crews
        while pool:
            crew = pool.popleft()
            crew.pooled = False
            if crew.running or crew.scope.cancel_called or crews.get(crew.branch) is not crew:
                continue  # busy again, cancelled with its branch, or retired
            # Idle, so nothing runs under its scope: it may serve another branch.
            del crews[crew.branch]
            crew.branch = branch
            crews[branch] = crew
            return crew
        if len(crews) >= 2 * self._max_parallel:
            # At most max_parallel crews can be busy: retire the idle ones, so that a run
            # with many short-lived branches does not keep a task alive for each.
            for name, idle in [item for item in crews.items() if not item[1].running]:
                idle.scope.cancel()
                del crews[name]
        crew = crews[branch] = _Crew(branch)
        assert self._nursery is not None
        self._nursery.start_soon(
            crew.serve, self._work, self._inbox_send, name=f"dagtrio crew {branch!r}"
        )
        return crew

    def _is_finished(self) -> bool:
        state = self._state
        if state.running or state.delayed or self._unacked or not self._hooks_started:
            return False
        if state.has_ready() and not self._halted:
            return False
        if state.held_count and self._stopping is None and not self._halted:
            # Only paused work is left: a person (or a hook answering RunIdle) must
            # resume it, so stay alive and say so once.
            if not self._idle:
                self._idle = True
                self._emit(RunIdle(tuple(state.paused)))
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
                self._apply(command)
            message.applied.set()
        elif kind is Submitted:
            self._apply_submitted(message)
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

    def _apply(self, command: ExecutorCommand) -> None:
        try:
            self._state.apply(command)
        except Rejected as exc:
            self._state.reject(command, exc.reason)

    def _apply_submitted(self, message: Submitted) -> None:
        try:
            self._state.apply(message.command)
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
                logger.warning("hook %s raised on a HookFailed event: %s", name, describe(error))
            else:
                self._emit(HookFailed(name, describe(error)))
            return
        self._fail(error, f"hook {name} raised {describe(error)}")
        self._halt()

    def _halt(self) -> None:
        """Start nothing more and cancel every task of the run."""
        self._halted = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _begin_shutdown(self, grace: float, reason: str) -> None:
        now = trio.current_time()
        if self._stopping is None:
            self._stopping = reason
            if self._error is None:
                self._error = reason
            if self._recorder is not None and not self._state.stopped:
                # A crash during the grace period must not resume as if nothing had
                # been asked (see `_replay_record`).
                self._recorder.mark("stop", json.dumps(reason))
            self._state.stop(f"cancelled: {reason}")
        self._idle = False
        deadline = now + grace
        if deadline >= self._grace_deadline:
            return  # a later shutdown never extends an earlier one's grace
        self._grace_deadline = deadline
        self._grace = grace
        if self._grace_scope is not None:
            self._grace_scope.cancel()
            self._grace_scope = None
        if grace == 0:
            self._cancel_running()
        elif self._state.running and not math.isinf(grace):
            assert self._nursery is not None
            self._grace_scope = trio.CancelScope()
            self._nursery.start_soon(self._grace_timer, self._grace_scope, grace)

    def _cancel_running(self) -> None:
        over = f" ({self._grace:g}s grace period over)" if self._grace else ""
        running = [node for node in self._state.nodes.values() if node.status is NodeStatus.RUNNING]
        self._state.cancel_nodes(running, f"cancelled: {self._stopping}{over}")

    async def _grace_timer(self, scope: trio.CancelScope, grace: float) -> None:
        with scope:
            await trio.sleep(grace)
            await self._inbox_send.send(GraceOver())

    def _emit(self, event: ExecutionEvent) -> None:
        # Nobody listening (no hooks, no readers): nothing to deliver or wait for.
        if self._hooks or self._readers:
            self._outbox.put(event)
            self._pipelined += 1
            self._unacked += 1
            recorder = self._recorder
            if recorder is not None:
                if type(event) in _UNRECORDED and self._floor:
                    # Not the announcement of a record but the consequence of an event
                    # still in the pipeline (a hook's rejected command, a hook's
                    # failure), which a crash would not bring back: until it is
                    # through, that event must stay past the mark, to be delivered
                    # again (and cause this again) on resume.
                    self._tag(self._floor[0][1])
                else:
                    self._tag(recorder.seq)

    def _tag(self, tag: int) -> None:
        floor = self._floor
        while floor and floor[-1][1] >= tag:
            floor.pop()
        floor.append((self._tagged, tag))
        self._tagged += 1

    def _events_done(self, count: int) -> None:
        self._unacked -= count
        recorder = self._recorder
        if recorder is not None:
            self._through = through = min(self._through + count, self._tagged)
            floor = self._floor
            while floor and floor[0][0] < through:
                floor.popleft()
            # Every record's events are emitted right after it and before the next
            # record: records below the lowest tag still in the pipeline have had all
            # their events through every hook, with the commands they caused applied
            # (and appended, hence written no later than the mark).
            recorder.handled = floor[0][1] - 1 if floor else recorder.seq

    async def _journal_progress(self) -> None:
        # The run may have ended meanwhile (the journal writes its last records after).
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._inbox_send.send(JournalProgress())

    async def _serve_journal(self, recorder: RunRecorder) -> None:
        try:
            await recorder.serve()
        except JournalError as exc:
            if self._finished:
                # The run's last records: nobody reads the inbox any more.
                self._fail(exc, str(exc))
            else:
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._inbox_send.send(JournalFailed(exc))

    def _retry_later(self, node: Node, delay: float) -> trio.CancelScope:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._nursery.start_soon(self._retry_timer, node, scope, delay)
        return scope

    async def _retry_timer(self, node: Node, scope: trio.CancelScope, delay: float) -> None:
        with scope:
            await trio.sleep(delay)
        if not scope.cancelled_caught:
            await self._inbox_send.send(RetryDue(node))

    async def _work(self, node: Node, crew: _Crew, ctx: NodeCtx) -> None:
        output: Any = None
        error: BaseException | str | None = None
        timeout = node.spec.timeout
        try:
            if timeout is None:
                output = await node.call(ctx)
            else:
                with trio.move_on_after(timeout) as limit:
                    output = await node.call(ctx)
                if limit.cancelled_caught:
                    message = f"timed out after {timeout:g}s (attempt {ctx.attempt})"
                    if isinstance(node.action, FunctionAction) and not node.action.is_async:
                        # Say what really happened: Python cannot stop a thread.
                        message += (
                            "; its worker thread could not be stopped and was"
                            " abandoned (it may still be running)"
                        )
                    error = message
        except Exception as exc:
            # Kept whole until the coordinator has formatted its traceback.
            error = exc
        except BaseException as exc:
            if not _holds_cancellation(exc):
                raise  # KeyboardInterrupt, SystemExit: not this node's business
            if trio.current_effective_deadline() != -math.inf:
                # A Cancelled that no scope of ours asked for: re-raised by hand out of
                # the scope it belonged to. Taken for ours, it would end the crew's
                # other nodes as cancelled and then crash the run; it is this attempt's
                # failure.
                error = exc
            else:
                # The crew was cancelled (its branch, a shutdown) or the whole run was;
                # an action with a nursery of its own raises a group holding Cancelled.
                # The node is final already; the coordinator only needs its slot back.
                node.result, node.fault = CANCELLED_ATTEMPT, None
                crew.report(self._inbox_send, node)
                raise
        # The node itself is the message: a message object (and a NodeOutput for the
        # plain value most actions return) per attempt would be garbage the collector
        # must chase, and with max_parallel tasks alive that costs more than the rest
        # of the bookkeeping.
        node.result, node.fault = output, error
        # Without the checkpoint of send() when the inbox has room: the task ends here
        # anyway, and a needless trip through the scheduler is a sizeable share of the
        # cost of a short action.
        try:
            self._inbox_send.send_nowait(node)
        except trio.WouldBlock:
            try:
                await self._inbox_send.send(node)
            except trio.Cancelled:
                crew.unsent.append(node)
                raise

    def _conclude(self) -> None:
        """Fix the final state (idempotent): whatever is not final now never will be."""
        if self._finished:
            return
        self._finished = True
        self._halted = True
        state = self._state
        reason = self._error or "run ended before the node finished"
        if state.unfinished:
            # Whatever the pipeline can no longer deliver, the report still records.
            state.mute()
            state.cancel_nodes(list(state.nodes.values()), f"cancelled: {reason}")
        state.mark_finished()
        self._set_report()
        # Anyone whose command was queued but never applied hears that the run ended;
        # closing right after (no checkpoint between) turns away everyone later.
        pending = []
        while True:
            try:
                pending.append(self._inbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        self._inbox.close()
        for message in pending:
            kind = type(message)
            if kind is Submitted:
                message.unapplied = True
                message.reply.set()
            elif kind is Shutdown:
                message.reply.set()
            elif kind is HookCommands:
                message.applied.set()
            elif kind is HookCrashed and not self._isolate and self._failure is None:
                # The hook failed the run even if a cancellation got there first.
                self._fail(message.error, f"hook {message.hook} raised {describe(message.error)}")
                self._set_report()
        # Every stream ends with the run, including any the pipeline's tail never got
        # to (the run ended before it started, or a stream opened during teardown).
        for reader in self._readers:
            reader.channel.close()
        self._readers.clear()
        # Workers and the tail of a cancelled run never report back; nothing runs now.
        state.abandon_attempts()
        self._unacked = 0
        self._idle = False

    def _set_report(self) -> None:
        state = self._state
        success = (
            self._failure is None
            and self._stopping is None
            and self._error is None
            and all(node.status is NodeStatus.SUCCEEDED for node in state.nodes.values())
        )
        self._report = state.report(success=success, error=self._error, final=True)

    async def _complete_hooks(self, *, cancelled: bool) -> None:
        """Call every hook's ``on_complete`` once, each on its own, whatever the others do.

        `cancel` ends them at once (each later one is still called, in a cancelled
        scope, so that its synchronous cleanup runs) and `shutdown` bounds them by its
        grace.
        """
        success = self._report.success if self._report is not None else False
        interrupted: trio.Cancelled | None = None
        for hook in self._hooks:
            name = hook_name(hook)
            shielded = cancelled or interrupted is not None
            try:
                # After a cancellation, cleanup gets a bounded, shielded window per hook,
                # so one slow or cancelled hook cannot rob the others of theirs.
                with trio.CancelScope(shield=shielded) as scope:
                    limit = trio.current_time() + CLEANUP_GRACE if shielded else math.inf
                    scope.deadline = min(limit, self._complete_deadline)
                    if self._complete_cancelled:
                        scope.cancel()
                    self._complete_scope = scope
                    await _settle(hook.on_complete(self._hook_ctx, success))
            except trio.Cancelled as exc:
                interrupted = exc
            except Exception as exc:
                if self._isolate:
                    logger.warning("hook %s raised in on_complete: %s", name, describe(exc))
                elif self._failure is None:
                    self._fail(exc, f"hook {name} raised in on_complete: {describe(exc)}")
                    self._set_report()
            finally:
                self._complete_scope = None
        if interrupted is not None:
            raise interrupted


class _Crew:
    """The worker tasks of one branch, in a nursery of their own under one cancel scope.

    A node needs a cancel scope (cancelling its branch, or everything at the end of a
    shutdown's grace, must stop it), but entering and leaving one per attempt costs
    Trio about as much as starting the worker task itself. `RunState` only ever
    cancels a whole branch's running nodes at once (`RunState.cancel_nodes`), so every
    running node of a branch shares its crew's scope instead. Cancelling it is for
    good: a branch is cancelled for good, and so is a run that stops (shutdown,
    fail_fast, its end); idle crews that the run retires leave `Run._crews` first,
    and an idle crew taken over by another branch leaves its old branch's entry.
    """

    __slots__ = ("branch", "nursery", "pooled", "running", "scope", "unsent", "waiting")

    def __init__(self, branch: str) -> None:
        #: the branch it runs nodes of now (an idle crew may move to another)
        self.branch = branch
        #: in `Run._idle_crews`
        self.pooled = False
        self.scope = trio.CancelScope()
        self.nursery: trio.Nursery | None = None
        #: attempts started here whose end the coordinator has not heard of yet
        self.running = 0
        #: workers to start once `serve` has opened the nursery
        self.waiting: list[tuple[Node, NodeCtx]] = []
        #: attempt ends that workers could not report before the crew was cancelled
        self.unsent: list[Node] = []

    def start(self, work: Worker, node: Node, ctx: NodeCtx) -> None:
        if self.nursery is None:
            self.waiting.append((node, ctx))
        else:
            # An explicit name spares Trio working one out for every task.
            self.nursery.start_soon(work, node, self, ctx, name=_WORKER_NAME)

    async def serve(self, work: Worker, inbox: trio.MemorySendChannel[Any]) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                # Not in this frame, which lives as long as the crew: its locals would
                # keep the first workers' contexts alive all that time.
                self._start_waiting(work)
                await trio.sleep_forever()
        # The crew was cancelled, not the run (that would have cancelled us here too):
        # its nodes are final, but the coordinator counts their slots until it hears.
        for message in self.unsent:
            await inbox.send(message)

    def _start_waiting(self, work: Worker) -> None:
        waiting, self.waiting = self.waiting, []
        for node, ctx in waiting:
            self.start(work, node, ctx)

    def report(self, inbox: trio.MemorySendChannel[Any], message: Node) -> None:
        """Report a cancelled attempt's end without a checkpoint (the worker is cancelled)."""
        try:
            inbox.send_nowait(message)
        except trio.WouldBlock:
            self.unsent.append(message)  # `serve` sends it once the workers are gone
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the run is over: nobody counts slots any more


Worker = Callable[[Node, _Crew, NodeCtx], Awaitable[None]]

#: what Trio would name the worker tasks by itself
_WORKER_NAME = f"{Run._work.__module__}.{Run._work.__qualname__}"

#: events that announce no record of their own (see `Run._emit`)
_UNRECORDED = frozenset({CommandRejected, HookFailed})


async def _settle(result: Any) -> Any:
    """What a hook method returned, awaited if it is awaitable: sync methods are
    accepted, as sync function hooks are."""
    if inspect.isawaitable(result):
        return await result
    await trio.lowlevel.checkpoint()
    return result
