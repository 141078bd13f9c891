"""A run's side of the journal: its records, appended as it goes and written in batches.

`RunRecorder` turns the changes `RunState` makes into journal rows (it is the state's
`Recorder`). The coordinator appends synchronously (it never waits on the disk);
`RunRecorder.serve`, a task of the run, writes what has accumulated in one transaction
at a time, in a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from .._errors import JournalError, RunFinishedError, describe
from .._model import jsonvalue
from .._model.commands import ExecutorCommand
from .._model.convert import to_data
from .._model.spec import NodeSpec, NodeStatus
from .._state.node import Node
from .codec import encode_batch, encode_outputs
from .sqlite import SqliteJournal, journal_limiter

__all__ = ["BACKLOG_LIMIT", "RunRecorder"]

# Once per node: a module global is read faster than an enum's member or ``.value``.
_SUCCEEDED = NodeStatus.SUCCEEDED
_VALUES = {status: status.value for status in NodeStatus}

#: appended rows not yet committed, past which the run starts no new node
BACKLOG_LIMIT = 20_000
#: while nobody waits for a commit, the writer lets rows gather for up to this many
#: scheduler passes, or until this many are appended, before it writes them
GATHER_PASSES = 64
GATHER_ROWS = 1024


class RunRecorder:
    """Appends a run's records and writes them to the journal in batches."""

    def __init__(self, journal: SqliteJournal, run_id: str, *, start_seq: int = 0) -> None:
        self.journal = journal
        self.run_id = run_id
        self.rows: list[tuple[Any, ...]] = []
        #: seq of the last record appended
        self.seq = start_seq
        #: seq of the last record committed
        self.committed = start_seq
        #: the journal's ``handled`` mark to write with the next batch
        self.handled = start_seq
        self.nodes = 0
        #: outputs already encoded at the end of an attempt, by node id
        self.encoded: dict[str, str | None] = {}
        #: once set, records are no longer taken (the run is being torn down from
        #: outside, and what it does now is not the run's own doing)
        self.frozen = False
        self.failure: JournalError | None = None
        self._end: tuple[float, bool, str | None] | None = None
        self._closed = False
        self._wakeup = trio.Event()
        self._committed_event = trio.Event()
        #: called after a commit while the coordinator waits for the backlog to shrink
        self.on_progress: Callable[[], Awaitable[None]] | None = None
        self.throttled = False
        #: tasks in `wait_committed`
        self.waiting = 0

    # -------------------------------------------------------------- appending (sync)

    def _append(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        self._wakeup.set()

    def encode_batch(self, specs: Sequence[NodeSpec], next_auto_id: int) -> str:
        """A batch as its ``add`` record will hold it (see `codec.encode_batch`)."""
        return encode_batch(specs, next_auto_id)

    def add(self, encoded: str, count: int) -> None:
        if self.frozen:
            return
        self.seq += 1
        self.nodes += count
        self._append((self.seq, "add", None, None, None, None, None, None, encoded, None, None))

    def command(self, command: ExecutorCommand) -> None:
        """Append ``command``; `TypeError`/`ValueError` (nothing appended) if not JSON."""
        if self.frozen:
            return
        text = jsonvalue.dumps(to_data(command))
        self.seq += 1
        self._append((self.seq, "command", None, None, None, None, None, None, text, None, None))

    def mark(self, kind: str, data: str | None = None) -> None:
        """Append a record of the run's own progress: ``started`` (every hook's
        ``on_start`` done, its commands applied) or ``stop`` (a shutdown or fail_fast,
        with its reason as JSON)."""
        if self.frozen:
            return
        self.seq += 1
        self._append((self.seq, kind, None, None, None, None, None, None, data, None, None))

    def take_outputs(self, node_id: str, outputs: Any) -> str | None:
        """Encode a success's outputs for its outcome record; the error if they cannot be."""
        try:
            self.encoded[node_id] = encode_outputs(outputs)
        except (TypeError, ValueError) as exc:
            return f"outputs cannot be stored in the journal: {describe(exc)}"
        return None

    def outcome(self, node: Node) -> None:
        if self.frozen:
            return
        self.seq += 1
        data = None
        kind = "outcome"
        status = node.status
        if status is _SUCCEEDED:
            data = self.encoded.pop(node.id, None)
            if node.cached:
                kind = "cached"
            elif node.supplied:
                kind = "supplied"
        elif node.on_hold:
            kind = "held"
        self._append(
            (
                self.seq,
                kind,
                node.id,
                _VALUES[status],
                node.attempts,
                node.started_at,
                node.finished_at,
                node.error,
                data,
                node.traceback,
                node.ended,
            )
        )

    def backlog(self) -> int:
        return self.seq - self.committed

    # -------------------------------------------------------------- writing (async)

    async def serve(self) -> None:
        """Write batches until `close`; a failed write is kept in `failure` and raised."""
        while True:
            while not self.rows and not self._closed:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
            if not self.rows and self._end is None:
                return  # closed with nothing left to write
            await self._gather()
            await self._write_batch()
            if self._closed and not self.rows and self._end is None:
                return

    async def _gather(self) -> None:
        # A commit costs the same for one row as for hundreds, and each costs the run a
        # trip to a worker thread: with nobody waiting for this one (no event held at
        # the pipeline's head, the run not throttled), let the run append some more.
        # Scheduler passes rather than a timer, so a MockClock's time is not moved.
        rows = self.rows
        for _ in range(GATHER_PASSES):
            if self.waiting or self.throttled or self._closed or len(rows) >= GATHER_ROWS:
                return
            await trio.lowlevel.checkpoint()
            rows = self.rows

    async def _write_batch(self) -> None:
        if self.failure is not None:
            # A batch was lost: writing later ones would leave a gap in the run's
            # records (an outcome without the addition it follows). The run stops.
            self.rows = []
            return
        rows, self.rows = self.rows, []
        end = None
        if self._closed:
            # Nothing is appended after close: the run's end goes with the last rows.
            end, self._end = self._end, None
        last = rows[-1][0] if rows else self.committed
        try:
            # Not abandoned on cancellation: a batch is written whole or not at all.
            await trio.to_thread.run_sync(
                self.journal._write,
                self.run_id,
                rows,
                min(self.handled, last),
                self.nodes,
                end,
                limiter=journal_limiter(),
            )
        except JournalError as exc:
            self.failure = exc
            self._committed_event.set()
            raise
        self.committed = last
        event, self._committed_event = self._committed_event, trio.Event()
        event.set()
        if self.throttled and self.on_progress is not None:
            self.throttled = False
            await self.on_progress()

    async def wait_committed(self, seq: int) -> None:
        """Return once every record up to ``seq`` is committed.

        After a failed write it never returns: the coordinator stops the run (it hears
        of the failure from `serve`), which cancels whoever waits here. Raising here
        instead would crash the waiting task, the event pipeline, with the error.
        """
        self.waiting += 1
        try:
            while self.committed < seq:
                if self.failure is not None:
                    await trio.sleep_forever()
                await self._committed_event.wait()
        finally:
            self.waiting -= 1

    @property
    def closed(self) -> bool:
        """True once `close` was called: nothing more will be recorded."""
        return self._closed

    async def wait_durable(self, seq: int) -> None:
        """For an outside caller: return once every record up to ``seq`` is committed.

        Raises the journal's failure (`JournalError`) if it cannot be, and
        `RunFinishedError` if the run was torn down from outside first.
        """
        self.waiting += 1
        try:
            while self.committed < seq:
                if self.failure is not None:
                    raise self.failure
                if self.frozen:
                    raise RunFinishedError(
                        f"run {self.run_id} was torn down before the command was recorded"
                    )
                await self._committed_event.wait()
        finally:
            self.waiting -= 1

    def freeze(self) -> None:
        """Take no more records (the run is torn down from outside); wake `wait_durable`."""
        self.frozen = True
        event, self._committed_event = self._committed_event, trio.Event()
        event.set()

    def close(self, end: tuple[float, bool, str | None] | None = None) -> None:
        """No more records: write what is left (and the run's end, if given), then stop."""
        self._end = end
        self._closed = True
        self._wakeup.set()

    async def flush(self) -> None:
        """Write whatever is appended now, in this task (when `serve` no longer runs)."""
        if self.rows or self._end is not None:
            await self._write_batch()
