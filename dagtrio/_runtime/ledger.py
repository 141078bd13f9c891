"""The run's side of the event pipeline: what goes in, what came through, the journal's mark.

Every event goes into the outbox here (`_emit`), counted until the pipeline's tail
says it passed every hook and reader (`_events_done`): the admission budget of the
run. With a journal, each event is tagged with the record it announces, and the
lowest tag still in flight gives the journal's ``handled`` mark."""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

import trio

from .._durable.recorder import RunRecorder
from .._errors import JournalError
from .._hooks.hook import command_list, hook_name
from .._hooks.messages import HookCommands, HookCrashed, Reply
from .._hooks.pipeline import Pipe, Through, run_stage, run_tail
from .._model.events import CommandRejected, ExecutionEvent, HookFailed, RunResumed
from .base import RunData, settle
from .messages import (
    HooksStarted,
    JournalFailed,
    JournalProgress,
)

__all__ = ["Ledger"]

logger = logging.getLogger("dagtrio")


class Ledger(RunData):
    """The run's side of the event pipeline: what goes in, what came through, the journal's mark."""

    def _announce_resumed(self) -> None:
        """A resumed run's first events: `RunResumed`, then those hooks may have missed."""
        self._emit(RunResumed(self._rerun))
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
                commands = command_list(await settle(hook.on_start(self._hook_ctx)), name)
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
        last = len(self._hooks) - 1
        through = Through()
        for i, hook in enumerate(self._hooks):
            sink = Pipe(capacity)
            nursery.start_soon(
                run_stage,
                hook,
                hook_name(hook),
                self._hook_ctx,
                source,
                sink,
                inbox,
                self._isolate,
                self._readers if i == last else None,
                through,
            )
            source = sink
        nursery.start_soon(run_tail, source, self._readers, inbox, through)

    def _emit(self, event: ExecutionEvent) -> None:
        taps = self._taps
        if taps:
            # Told now, in the coordinator's step, and never waited for: a view's
            # watching costs the run a call, not a trip through the pipeline.
            position = self._tapped
            self._tapped = position + 1
            failed = None
            for tap in taps:
                try:
                    tap.push(position, event)
                except Exception:
                    logger.exception(
                        "a tap on run %s's events failed; detached",
                        self.run_id,
                        extra=self._log_fields("tap_failed"),
                    )
                    failed = [*(failed or ()), tap]
            for tap in failed or ():
                taps.remove(tap)
        # Nobody listening (no hooks, no readers): nothing to deliver or wait for.
        if self._hooks or self._readers:
            self._outbox.put(event)
            self._pipelined += 1
            self._unacked += 1
            if self._state.deferring:
                self._note_branch(event)
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

    def _note_branch(self, event: ExecutionEvent) -> None:
        """Remember the pipeline position of the latest event about each branch (and
        the branches above it), for deferred nodes to wait until it is through."""
        ref = getattr(event, "node", None)
        if ref is None:
            return
        node = self._state.nodes.get(ref.node)
        if node is None:
            return
        position = self._pipelined
        last = self._branch_events
        branch = node.branch
        end = branch.find("/")
        while end != -1:
            last[branch[:end]] = position
            end = branch.find("/", end + 1)
        last[branch] = position

    def _tag(self, tag: int) -> None:
        floor = self._floor
        while floor and floor[-1][1] >= tag:
            floor.pop()
        floor.append((self._tagged, tag))
        self._tagged += 1

    def _events_done(self, count: int) -> None:
        self._unacked -= count
        waiting = self._progress_waiting
        while waiting and self._unacked < self._event_limit:
            self._progress(waiting.popleft())
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


#: events that announce no record of their own (see `Ledger._emit`)
_UNRECORDED = frozenset({CommandRejected, HookFailed})
