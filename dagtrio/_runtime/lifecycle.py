"""A run's life: serving it, halting, shutting down with grace, the end and its report."""

from __future__ import annotations

import json
import logging
import math
from contextlib import suppress

import trio

from .._errors import JournalError, describe
from .._hooks.hook import hook_name
from .._hooks.messages import HookCommands, HookCrashed
from .._model.spec import NodeStatus
from .base import CLEANUP_GRACE, RunData, is_cancellation, settle
from .messages import (
    GraceOver,
    Progress,
    Shutdown,
    Submitted,
)

__all__ = ["Lifecycle"]

logger = logging.getLogger("dagtrio")


class Lifecycle(RunData):
    """A run's life: serving it, halting, shutting down with grace, the end and its report."""

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
                logger.info(
                    "run %s of %s %s with %d nodes",
                    self.run_id,
                    self.dag_name,
                    "resumes" if self._resumed else "starts",
                    len(self._state.nodes),
                    extra=self._log_fields("run_started", dagtrio_resumed=self._resumed),
                )
                if self._instruments is not None:
                    self._instruments.started()
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
                    "run was cancelled" if is_cancellation(exc) else f"run crashed: {describe(exc)}"
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
            # Every worker is done (the nursery is closed): what ran them may stop.
            await self._state.placement.aclose()
            report = self._report
            if report is not None and self._go.is_set():
                counts = {status.value: n for status, n in report.counts().items() if n}
                logger.log(
                    logging.INFO if report.success else logging.WARNING,
                    "run %s of %s %s: %s",
                    self.run_id,
                    self.dag_name,
                    "succeeded" if report.success else "failed",
                    self._error or ", ".join(f"{n} {status}" for status, n in counts.items()),
                    extra=self._log_fields(
                        "run_finished",
                        dagtrio_success=report.success,
                        dagtrio_counts=counts,
                        dagtrio_error=self._error,
                    ),
                )
            if self._instruments is not None and report is not None:
                self._instruments.finished(report)
            self._done.set()

    async def _record_end(self) -> None:
        """Record the end of a run that stopped itself (`cancel`, a failing hook).

        Those cancel the run's nursery, the journal's writer with it, before the
        normal end is recorded; they are still the run's own end, not a crash, so the
        run must not be left resumable.
        """
        recorder = self._recorder
        if recorder is None or recorder.frozen or recorder.failure:
            return
        report = self._report
        assert report is not None
        if not recorder.closed:
            recorder.close(
                (self._state.finished_at or self._state.now(), report.success, self._error)
            )
        # Closed but unwritten too: the writer may have been cancelled with the run
        # (`cancel` on a run at rest) after the end was handed to it.
        with trio.move_on_after(CLEANUP_GRACE, shield=True):
            try:
                await recorder.flush()
            except JournalError as exc:
                self._fail(exc, None)

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

    def _conclude(self) -> None:
        """Fix the final state (idempotent): whatever is not final now never will be."""
        if self._finished:
            return
        self._finished = True
        self._halted = True
        state = self._state
        reason = self._error or "run ended before the node finished"
        state.drop_holds()
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
            elif kind is Progress:
                message.reply.set()
            elif kind is HookCrashed and not self._isolate and self._failure is None:
                # The hook failed the run even if a cancellation got there first.
                self._fail(message.error, f"hook {message.hook} raised {describe(message.error)}")
                self._set_report()
        for progress in self._progress_waiting:
            progress.reply.set()
        self._progress_waiting.clear()
        # Every stream ends with the run, including any the pipeline's tail never got
        # to (the run ended before it started, or a stream opened during teardown).
        for reader in self._readers:
            reader.channel.close()
        self._readers.clear()
        for tap in self._taps:
            try:
                tap.close()
            except Exception:
                logger.exception(
                    "a tap on run %s's events failed to close",
                    self.run_id,
                    extra=self._log_fields("tap_failed"),
                )
        self._taps.clear()
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
                    await settle(hook.on_complete(self._hook_ctx, success))
            except trio.Cancelled as exc:
                interrupted = exc
            except Exception as exc:
                if self._isolate:
                    logger.warning(
                        "run %s: hook %s raised in on_complete: %s",
                        self.run_id,
                        name,
                        describe(exc),
                        extra=self._log_fields("hook_failed", dagtrio_hook=name),
                    )
                elif self._failure is None:
                    self._fail(exc, f"hook {name} raised in on_complete: {describe(exc)}")
                    self._set_report()
            finally:
                self._complete_scope = None
        if interrupted is not None:
            raise interrupted
