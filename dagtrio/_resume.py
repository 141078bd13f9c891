"""A run's side of the journal: recording as it goes, and replaying to resume.

`RunRecorder` turns the changes `RunState` makes into journal rows. The coordinator
appends synchronously (it never waits on the disk); `RunRecorder.serve`, a task of the
run, writes what has accumulated in one transaction at a time, in a worker thread.

`replay` rebuilds a `RunState` from a `StoredRun`: the same batches added and commands
applied in the same order, with every recorded outcome put back in its place. Nodes
with no outcome (they were running or waiting when the process died) are left to run
again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import trio

from . import _jsonvalue as jsonvalue
from ._commands import CancelBranch, EmitEvent, ExecutorCommand, PauseBranch, ResumeBranch
from ._convert import converter, to_data
from ._errors import InvalidGraphError, RunFinishedError, describe
from ._events import (
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    ExecutionEvent,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeSkipped,
)
from ._frozen import freeze
from ._journal import JournalError, SqliteJournal, StoredRun, journal_limiter
from ._report import RunReport
from ._spec import NodeOutput, NodeSpec, NodeStatus
from ._state import Node, RunState
from ._validate import check_int

__all__ = ["RunRecorder", "encode_outputs", "replay", "stored_report", "stored_state"]

#: appended rows not yet committed, past which the run starts no new node
BACKLOG_LIMIT = 20_000
#: while nobody waits for a commit, the writer lets rows gather for up to this many
#: scheduler passes, or until this many are appended, before it writes them
GATHER_PASSES = 64
GATHER_ROWS = 1024


def encode_spec(spec: NodeSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"action": spec.action, "id": spec.id}
    if spec.deps:
        data["deps"] = list(spec.deps)
    if spec.inputs:
        data["inputs"] = dict(spec.inputs)
    if spec.timeout is not None:
        data["timeout"] = spec.timeout
    if spec.try_count != 1:
        data["try_count"] = spec.try_count
    if spec.retry_delay:
        data["retry_delay"] = spec.retry_delay
    if spec.branch is not None:
        data["branch"] = spec.branch
    if spec.cache is not None:
        data["cache"] = spec.cache
    return data


def encode_batch(specs: Sequence[NodeSpec], next_auto_id: int) -> str:
    """An ``add`` record's data: the specs (with their final ids) and the automatic id
    counter after them, so that a resumed run numbers later nodes as an uninterrupted
    one would. `InvalidGraphError` names a node whose inputs are not JSON values (a
    journal could not bring them back as they were)."""
    encoded = [encode_spec(spec) for spec in specs]
    for spec, data in zip(specs, encoded, strict=True):
        if "inputs" in data:
            try:
                jsonvalue.check(data["inputs"])
            except (TypeError, ValueError) as exc:
                raise InvalidGraphError(
                    spec.id, f"inputs cannot be stored in the journal: {exc}"
                ) from None
    return json.dumps({"specs": encoded, "next_auto_id": next_auto_id}, allow_nan=False)


def decode_batch(text: str) -> tuple[list[NodeSpec], int | None]:
    """The specs of an ``add`` record and the id counter after them (``None`` in the
    records of dagtrio before 0.2, which stored the list of specs alone)."""
    data = json.loads(text)
    if isinstance(data, list):
        return [NodeSpec(**spec) for spec in data], None
    counter = check_int("the automatic id counter", data["next_auto_id"], 0)
    return [NodeSpec(**spec) for spec in data["specs"]], counter


def encode_outputs(outputs: Any) -> str | None:
    """Outputs as JSON text (None for None); `TypeError`/`ValueError` if they are not
    a JSON value that would come back as it is (see `_jsonvalue`)."""
    if outputs is None:
        return None
    return jsonvalue.dumps(outputs)


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

    def add(self, encoded: str, count: int) -> None:
        if self.frozen:
            return
        self.seq += 1
        self.nodes += count
        self._append((self.seq, "add", None, None, None, None, None, None, encoded, None))

    def command(self, command: ExecutorCommand) -> None:
        """Append ``command``; `TypeError`/`ValueError` (nothing appended) if not JSON."""
        if self.frozen:
            return
        text = jsonvalue.dumps(to_data(command))
        self.seq += 1
        self._append((self.seq, "command", None, None, None, None, None, None, text, None))

    def mark(self, kind: str, data: str | None = None) -> None:
        """Append a record of the run's own progress: ``started`` (every hook's
        ``on_start`` done, its commands applied) or ``stop`` (a shutdown or fail_fast,
        with its reason as JSON)."""
        if self.frozen:
            return
        self.seq += 1
        self._append((self.seq, kind, None, None, None, None, None, None, data, None))

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
        if node.status is NodeStatus.SUCCEEDED:
            data = self.encoded.pop(node.id, None)
        self._append(
            (
                self.seq,
                "cached" if node.cached and node.status is NodeStatus.SUCCEEDED else "outcome",
                node.id,
                node.status.value,
                node.attempts,
                node.started_at,
                node.finished_at,
                node.error,
                data,
                node.traceback,
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


def replay(state: RunState, stored: StoredRun) -> list[tuple[int, ExecutionEvent]]:
    """Rebuild ``state`` from ``stored``; return the events to deliver again.

    Those are the events of every record past the journal's ``handled`` mark (with the
    record's seq), which hooks may not have seen through. A record that cannot be read
    back (a damaged or hand-edited file) is a `JournalError` naming it.
    """
    again: list[tuple[int, ExecutionEvent]] = []
    for seq, kind, row in stored.records:
        try:
            event = _replay_record(state, kind, row, announce=seq > stored.handled)
        except Exception as exc:
            raise JournalError(
                f"journal {stored.path or '(unknown file)'}: run {state.run_id!r}: record "
                f"{seq} ({kind}) cannot be read back: {describe(exc)}"
            ) from exc
        again.extend((seq, one) for one in event)
    return again


def _replay_record(
    state: RunState, kind: str, row: Mapping[str, Any], *, announce: bool
) -> list[ExecutionEvent]:
    """Apply one record to ``state``; its events if ``announce``."""
    nodes = state.nodes
    if kind == "add":
        specs, counter = decode_batch(row["data"])
        try:
            prepared = state.prepare(specs)
        except InvalidGraphError as exc:
            raise ValueError(f"cannot rebuild the graph: {exc}") from None
        state.add(prepared)
        state.restore_auto_ids(prepared.specs, counter)
        if not announce:
            return []
        added = [nodes[spec.id] for spec in prepared.specs]  # type: ignore[index]
        return [NodeAdded(node.ref, node.spec, node.branch) for node in added]
    if kind == "command":
        command = converter.structure(json.loads(row["data"]), ExecutorCommand)
        state.apply(command)
        event = _command_event(state, command) if announce else None
        return [event] if event is not None else []
    if kind in ("outcome", "cached"):
        node = nodes[row["node"]]
        status = NodeStatus(row["status"])
        if not status.is_final:
            raise ValueError(f"node {node.id!r} has an outcome that is not final: {status}")
        outputs = json.loads(row["data"]) if row["data"] is not None else None
        state.restore(
            node,
            status,
            attempts=row["attempts"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            error=row["error"],
            outputs=outputs,
            cached=kind == "cached",
            traceback=row["traceback"],
        )
        if not announce:
            return []
        return [_outcome_event(node, status, row, freeze(outputs), kind == "cached")]
    if kind == "stop":
        # As the live run: nothing starts any more and later nodes are cancelled as
        # they come. The nodes it cancelled then have records of their own, next; the
        # ones it let finish within the grace period may have records later.
        state.stopped = f"cancelled: {json.loads(row['data'])}"
        return []
    if kind == "started":
        return []
    raise ValueError(f"unknown record kind {kind!r}")


def _command_event(state: RunState, command: ExecutorCommand) -> ExecutionEvent | None:
    known = True
    match command:
        case PauseBranch(branch=branch, reason=reason):
            return BranchPaused(branch, reason, known)
        case ResumeBranch(branch=branch):
            return BranchResumed(branch, known)
        case EmitEvent(event=event):
            return event
        case CancelBranch(branch=branch, reason=reason):
            return BranchCancelled(branch, reason, known)
        case _:
            return None  # SetNodeInputs announces nothing


def _outcome_event(
    node: Node, status: NodeStatus, row: Mapping[str, Any], outputs: Any, cached: bool
) -> ExecutionEvent:
    ref = node.ref
    error = row["error"]
    if status is NodeStatus.SUCCEEDED:
        return NodeCompleted(ref, NodeOutput(outputs, True, {"cached": True} if cached else None))
    if status is NodeStatus.FAILED:
        return NodeFailed(ref, error or "failed", row["traceback"])
    if status is NodeStatus.CANCELLED:
        return NodeCancelled(ref, error or "cancelled")
    return NodeSkipped(ref, error or "skipped")


def stored_report(stored: StoredRun) -> RunReport:
    """The report of a stored run, rebuilt without running anything."""
    info = stored.info
    state = stored_state(stored)
    success = bool(info.success) if info.success is not None else False
    return state.report(success=success, error=info.error, final=True)


def stored_state(stored: StoredRun) -> RunState:
    """The state a stored run was left in, rebuilt without its actions (nothing runs)."""
    info = stored.info
    state = RunState(
        _AnyAction(),  # type: ignore[arg-type]
        dag_name=info.dag_name,
        run_id=info.run_id,
        emit=lambda event: None,
        retry_later=lambda node, delay: None,
        now=lambda: info.started_at,
    )
    state.listening = False
    replay(state, stored)
    state.started_at = info.started_at
    state.finished_at = info.finished_at
    return state


class _AnyAction:
    """A registry that knows every action name: reading a report runs nothing."""

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Any:
        return iter(())

    def get(self, name: str) -> Any:
        return _NoAction(name)


class _NoAction:
    def __init__(self, name: str) -> None:
        self.name = name

    async def execute(self, ctx: Any) -> Any:  # pragma: no cover - never run
        raise RuntimeError(f"{self.name}: reading a journal runs nothing")
