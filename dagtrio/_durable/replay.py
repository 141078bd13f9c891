"""Replaying a journal: a `RunState` rebuilt from a `StoredRun`, to resume or to report.

`replay` adds the same batches and applies the same commands in the same order, with
every recorded outcome put back in its place. Nodes with no outcome (they were running
or waiting when the process died) are left to run again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import trio

from .._errors import InvalidGraphError, JournalError, describe
from .._model.commands import (
    CancelBranch,
    EmitEvent,
    ExecutorCommand,
    PauseBranch,
    ResumeBranch,
    RetryNode,
)
from .._model.convert import converter
from .._model.events import (
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    ExecutionEvent,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeSkipped,
)
from .._model.frozen import EMPTY, freeze
from .._model.report import RunReport
from .._model.spec import ENDINGS, Ending, NodeOutput, NodeStatus
from .._state.node import Node
from .._state.state import RerunPlan, RunState
from .codec import decode_batch
from .records import RunInfo, StoredRun

__all__ = ["replay", "replay_record", "state_for", "stored_report", "stored_state"]


def replay(state: RunState, stored: StoredRun) -> list[tuple[int, ExecutionEvent]]:
    """Rebuild ``state`` from ``stored``; return the events to deliver again.

    Those are the events of every record past the journal's ``handled`` mark (with the
    record's seq), which hooks may not have seen through. A record that cannot be read
    back (a damaged or hand-edited file) is a `JournalError` naming it.
    """
    again: list[tuple[int, ExecutionEvent]] = []
    for seq, kind, row in stored.records:
        event = replay_record(state, stored, seq, kind, row, announce=seq > stored.handled)
        again.extend((seq, one) for one in event)
    return again


def replay_record(
    state: RunState,
    stored: StoredRun,
    seq: int,
    kind: str,
    row: Mapping[str, Any],
    *,
    announce: bool = True,
) -> list[ExecutionEvent]:
    """Apply one record of ``stored`` to ``state``; the events it announces.

    Records applied one at a time, as they are written, rebuild the same state as
    `replay` (the browser view follows another process's run this way).
    """
    try:
        return _replay_record(state, kind, row, announce=announce)
    except Exception as exc:
        raise JournalError(
            f"journal {stored.path or '(unknown file)'}: run {state.run_id!r}: record "
            f"{seq} ({kind}) cannot be read back: {describe(exc)}"
        ) from exc


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
    if kind in _OUTCOMES:
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
            ended=_ending(row["ended"]),
            held=kind == "held",
            supplied=kind == "supplied",
        )
        if not announce:
            return []
        return [_outcome_event(node, status, row, freeze(outputs), kind)]
    if kind == "stop":
        # As the live run: nothing starts any more and later nodes are cancelled as
        # they come. The nodes it cancelled then have records of their own, next; the
        # ones it let finish within the grace period may have records later.
        state.restore_stop(f"cancelled: {json.loads(row['data'])}")
        return []
    if kind == "started":
        return []
    if kind == "rerun":
        # As the resume that asked for it: what follows are the re-run's own records.
        state.rerun(RerunPlan.decode(row["data"]))
        return []
    raise ValueError(f"unknown record kind {kind!r}")


#: the kinds of record that hold a node's outcome: how it got there is in the name
_OUTCOMES = frozenset({"outcome", "cached", "held", "supplied"})


def _command_event(state: RunState, command: ExecutorCommand) -> ExecutionEvent | None:
    known = True
    match command:
        case RetryNode(node_id=node_id):
            node = state.nodes[node_id]
            return NodeRetrying(node.ref, node.attempts, node.error or "failed", 0.0)
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
    node: Node, status: NodeStatus, row: Mapping[str, Any], outputs: Any, kind: str
) -> ExecutionEvent:
    ref = node.ref
    error = row["error"]
    if status is NodeStatus.SUCCEEDED:
        metadata = {kind: True} if kind in ("cached", "supplied") else None
        return NodeCompleted(ref, NodeOutput(outputs, True, metadata))
    if status is NodeStatus.FAILED:
        return NodeFailed(ref, error or "failed", row["traceback"], node.ended)
    if status is NodeStatus.CANCELLED:
        return NodeCancelled(ref, error or "cancelled", node.ended)
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
    state = state_for(info)
    replay(state, stored)
    if info.status == "finished":
        state.drop_holds()  # nobody waits for a decision in a run that ended
    state.restore_times(info.started_at, info.finished_at)
    return state


def state_for(info: RunInfo) -> RunState:
    """An empty state for the run ``info`` names, to replay its records into."""
    state = RunState(
        _AnyAction(),  # type: ignore[arg-type]
        dag_name=info.dag_name,
        run_id=info.run_id,
        emit=lambda event: None,
        retry_later=_no_retries,
        now=lambda: info.started_at,
    )
    state.listen(False)
    state.read_only()
    return state


def _no_retries(node: Node, delay: float) -> trio.CancelScope:  # pragma: no cover
    raise AssertionError("reading a journal runs nothing, so retries nothing")


class _AnyAction:
    """A registry that knows every action name: reading a report runs nothing."""

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Any:
        return iter(())

    def get(self, name: str) -> Any:
        return _NoAction(name)

    def retry_on(self, name: str) -> None:  # pragma: no cover - nothing fails here
        return None

    def uses(self, name: str) -> Mapping[str, int]:
        return EMPTY


class _NoAction:
    def __init__(self, name: str) -> None:
        self.name = name

    async def execute(self, ctx: Any) -> Any:  # pragma: no cover - never run
        raise RuntimeError(f"{self.name}: reading a journal runs nothing")


def _ending(text: str | None) -> Ending | None:
    if text is None:
        return None
    if text not in ENDINGS:
        raise ValueError(f"unknown ending {text!r} in the journal")
    return text
