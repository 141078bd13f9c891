"""A run in progress: the public `Run` handle, made of the rooms behind it.

`Run` is what `Coordinator.open_run` hands out. Its public methods talk to the
coordinator task through messages; the task itself is the rooms' work: `loop` (the
coordinator's loop), `crews` (where attempts run), `ledger` (the event pipeline's
bookkeeping) and `lifecycle` (serving, shutdown, the end), over `base.RunData`.
"""

from __future__ import annotations

import math
import types
from contextlib import suppress

import attrs
import trio

from .._durable.records import StoredRun
from .._durable.replay import stored_state
from .._errors import CommandRejectedError, RunFinishedError
from .._hooks.hook import HookContext
from .._hooks.messages import Reply
from .._hooks.pipeline import Pipe, Reader, Tap
from .._hooks.stream import EventStream
from .._model.commands import ExecutorCommand
from .._model.report import RunReport
from .._state.view import GraphView
from .._validate import check_seconds
from .crews import Crews
from .ledger import Ledger
from .lifecycle import Lifecycle
from .loop import Loop
from .messages import (
    Shutdown,
    Submitted,
)
from .options import RunOptions

__all__ = ["Run", "RunStatistics"]


@attrs.frozen
class RunStatistics:
    """A snapshot of a run's queues, for monitoring and for tests of boundedness."""

    nodes: int
    unfinished: int
    running: int
    ready: int
    #: ready nodes waiting for their paused branch to be resumed
    paused: int
    #: failed nodes held for a decision (``on_failure="hold"``)
    held: int
    delayed: int
    #: deferred nodes whose deps succeeded, waiting for their branch to be quiet
    deferred: int
    #: events emitted but not yet through every hook and reader
    events_in_flight: int
    #: events waiting in the coordinator's outbox for the first stage
    outbox: int
    inbox_buffered: int
    readers: int


class Run(Loop, Crews, Lifecycle, Ledger):
    """A run in progress, handed out by `Coordinator.open_run`.

    Talk to it from your application: `submit` commands (an approval, a UI action),
    read `events`, look at `graph`, `shutdown` or `cancel` it, and `wait` for its report.
    """

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
        pipe = Pipe(self._options.event_capacity)
        stream = EventStream(pipe)
        if self._finished:
            pipe.close()
        else:
            self._readers.append(Reader(pipe, self._pipelined))
            self._state.listen(True)
            if self._body_task is not None and trio.lowlevel.current_task() is self._body_task:
                self._body_streams.add(stream)
        return stream

    def _watch(self, tap: Tap) -> int:
        """Tell ``tap`` of every event from now on, as it is emitted, never waiting on it.

        The browser view's way in: unlike `events`, a tap cannot slow the run (see
        `Tap`). Returns the position of the first event it will get, which is also
        where a snapshot of `graph` taken now stands: the graph holds the effects of
        every event before it and of none after.
        """
        if not self._finished:
            self._taps.append(tap)
            if tap.every:
                self._state.listen(True)
        return self._tapped

    def _unwatch(self, tap: Tap) -> None:
        """Stop telling ``tap`` (a view that closed before its run ended)."""
        with suppress(ValueError):
            self._taps.remove(tap)
        if not self._finished:
            # Nobody left who needs the hot path's events: stop building them again.
            self._state.listen(
                bool(self._hooks or self._readers or any(t.every for t in self._taps))
            )

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
        """True while the run waits for a paused branch to be resumed or a held node to
        be decided (see `RunIdle`)."""
        return self._idle

    def statistics(self) -> RunStatistics:
        """Sizes of the run's queues right now (see `RunStatistics`)."""
        state = self._state
        return RunStatistics(
            nodes=len(state.nodes),
            unfinished=state.unfinished,
            running=state.running,
            ready=state.ready_count(),
            paused=state.parked_count,
            held=len(state.on_hold),
            delayed=state.delayed,
            deferred=len(state.deferred),
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

    def _enter_body(self) -> None:
        self._body_task = trio.lowlevel.current_task()
        self._go.set()

    def _leave_body(self) -> None:
        self._body_task = None
        for stream in list(self._body_streams):
            stream.detach()
