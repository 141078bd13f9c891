"""`check_run`: DESIGN.md §2's lifecycle rules, asserted on a finished run."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

from .._model.events import (
    CommandRejected,
    ExecutionEvent,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeProgress,
    NodeRetrying,
    NodeSkipped,
    NodeStarted,
)
from .._model.report import RunReport
from .._model.spec import NodeStatus

__all__ = ["check_run"]


def _node_of(event: ExecutionEvent) -> str | None:
    ref = getattr(event, "node", None)
    return ref.node if ref is not None else None


def check_run(
    report: RunReport,
    events: Iterable[ExecutionEvent] | None = None,
    *,
    try_counts: Mapping[str, int] | None = None,
    rejected: int | Callable[[CommandRejected], bool] = 0,
) -> None:
    """Assert DESIGN.md §2's lifecycle rules on a finished run; `AssertionError` says which.

    On the report: every node is final; a node that started had every dep succeed, and
    started after they finished; a node that has a failed, cancelled or skipped dep
    never started and ended skipped or cancelled, unless it was supplied (`CompleteNode`);
    a succeeded node made an attempt (or was supplied), a skipped one none.
    ``success`` agrees with the statuses: true only if every node succeeded, and
    true whenever every node succeeded and ``report.error`` is None (a run whose
    nodes all succeeded may still fail if ``report.error`` says why, e.g. a hook
    that raised in ``on_complete``, or a shutdown). ``try_counts`` (node →
    try_count) also bounds the attempts (pass ``try_count`` times the rounds for a node
    that `RetryNode` gave fresh ones).

    With ``events`` (every event of the run, in order, e.g. from a `RecordingHook`): the
    list is not empty (an empty one usually means the hook was never installed; for a
    run with no nodes, pass no events); each node has one `NodeAdded` before anything
    else about it, one `NodeStarted` per attempt, starts only after each dep's
    `NodeCompleted`, never has two attempts running at once, has `NodeProgress` only
    inside the attempt it names, gets `NodeRetrying` only
    between attempts, and ends with exactly one final event that matches its status
    (a held `NodeFailed` that a decision followed, `NodeRetrying` or a supplied
    `NodeCompleted`, was not the end).
    No command was rejected, unless ``rejected`` allows it: an int is the exact number
    of `CommandRejected` events expected; a predicate allows those for which it returns
    true (any number of them) and fails on the first it does not. The failure names
    each offending rejection's reason. ``rejected`` needs ``events``.
    """
    if isinstance(rejected, bool) or not (isinstance(rejected, int) or callable(rejected)):
        raise TypeError(f"rejected= takes a count or a predicate, not {rejected!r}")
    if isinstance(rejected, int) and rejected < 0:
        raise ValueError(f"rejected= must be >= 0, got {rejected}")
    if events is None and rejected != 0:
        raise TypeError("rejected= needs events: rejections are only seen as events")
    nodes = report.nodes
    for node_id, record in nodes.items():
        assert record.status.is_final, f"{node_id} ended the run {record.status.value}"
        deps = [nodes[dep] for dep in record.deps]
        if record.attempts and not record.supplied:
            for dep in deps:
                assert dep.status is NodeStatus.SUCCEEDED, (
                    f"{node_id} started though its dep {dep.id} is {dep.status.value}"
                )
                assert dep.finished_at is not None
                assert record.started_at is not None
                assert dep.finished_at <= record.started_at, (
                    f"{node_id} started before its dep {dep.id} finished"
                )
        if any(dep.status is not NodeStatus.SUCCEEDED for dep in deps) and not record.supplied:
            assert record.status in (NodeStatus.SKIPPED, NodeStatus.CANCELLED), (
                f"{node_id} is {record.status.value} though a dep did not succeed"
            )
        if record.status is NodeStatus.SUCCEEDED and not record.supplied:
            assert record.attempts >= 1, f"{node_id} succeeded without an attempt"
        if record.status is NodeStatus.SKIPPED:
            assert record.attempts == 0, f"{node_id} was skipped after starting"
        if try_counts is not None and node_id in try_counts:
            assert record.attempts <= try_counts[node_id], (
                f"{node_id} made {record.attempts} attempts, try_count {try_counts[node_id]}"
            )
    all_ok = all(r.status is NodeStatus.SUCCEEDED for r in nodes.values())
    if report.success:
        assert all_ok, "report.success is true but not every node succeeded"
    elif all_ok:
        assert report.error is not None, (
            "report.success is false but every node succeeded and report.error is None"
        )
    if events is None:
        return
    events = list(events)
    assert events, "no events were recorded: was the recording hook installed?"
    _check_rejections(events, rejected)
    _check_events(report, events)


def _check_rejections(
    events: list[ExecutionEvent], rejected: int | Callable[[CommandRejected], bool]
) -> None:
    rejections = [event for event in events if isinstance(event, CommandRejected)]
    if isinstance(rejected, int):
        assert len(rejections) == rejected, (
            f"{len(rejections)} CommandRejected events, expected {rejected}"
            + "".join(f"\n  {_describe_rejection(event)}" for event in rejections)
        )
        return
    for event in rejections:
        assert rejected(event), f"unexpected rejection: {_describe_rejection(event)}"


def _describe_rejection(event: CommandRejected) -> str:
    return f"{type(event.command).__name__} rejected: {event.reason}"


_FINAL_EVENT = {
    NodeCompleted: NodeStatus.SUCCEEDED,
    NodeFailed: NodeStatus.FAILED,
    NodeCancelled: NodeStatus.CANCELLED,
    NodeSkipped: NodeStatus.SKIPPED,
}


class _Decided(ExecutionEvent):
    """Stands in a node's history for a held failure that was then decided."""


def _decides(event: ExecutionEvent) -> bool:
    """Whether ``event`` follows a held node's `NodeFailed` as a decision about it."""
    if type(event) is NodeRetrying:
        return True
    if type(event) is NodeCompleted:
        return bool(event.outcome.metadata and event.outcome.metadata.get("supplied"))
    return False


def _check_events(report: RunReport, events: list[ExecutionEvent]) -> None:
    nodes = report.nodes
    seen: dict[str, list[ExecutionEvent]] = defaultdict(list)
    completed_at: dict[str, int] = {}
    for index, event in enumerate(events):
        node = _node_of(event)
        if node is None:
            continue
        history = seen[node]
        if type(event) is NodeProgress:
            # Not part of the node's lifecycle: only inside one of its attempts.
            last = history[-1] if history else None
            inside = type(last) is NodeStarted and last.attempt == event.attempt
            assert inside, f"{event!r} outside its attempt (after {last!r})"
            continue
        if not history:
            assert type(event) is NodeAdded, f"first event about {node} is {event!r}"
        else:
            assert type(event) is not NodeAdded, f"{node} was added twice"
            if type(history[-1]) is NodeFailed and _decides(event):
                # A held failure, decided (RetryNode, CompleteNode): not the end after all.
                history[-1] = _Decided()
            assert type(history[-1]) not in _FINAL_EVENT, f"{event!r} came after {node} had ended"
        if type(event) is NodeStarted:
            assert not history or type(history[-1]) is not NodeStarted, (
                f"{node} started attempt {event.attempt} while one was running"
            )
            for dep in nodes[node].deps:
                assert completed_at.get(dep, index) < index, (
                    f"{node} started before its dep {dep} completed"
                )
        if type(event) is NodeRetrying:
            assert history, f"{node} retried before it was added"
            assert type(history[-1]) in (NodeStarted, _Decided), (
                f"{node} retried without a failed attempt"
            )
        if type(event) is NodeCompleted:
            completed_at[node] = index
        history.append(event)
    for node, history in seen.items():
        counts = Counter(type(event) for event in history)
        record = nodes[node]
        assert counts[NodeStarted] == record.attempts, (
            f"{node}: {counts[NodeStarted]} NodeStarted events, {record.attempts} attempts"
        )
        finals = [event for event in history if type(event) in _FINAL_EVENT]
        assert len(finals) <= 1, f"{node} ended more than once: {finals}"
        if finals:
            assert _FINAL_EVENT[type(finals[0])] is record.status, (
                f"{node} ended with {finals[0]!r} but the report says {record.status.value}"
            )
        if record.status is NodeStatus.FAILED:
            # Held failures that were decided count as failed attempts retried.
            assert counts[NodeRetrying] == record.attempts - 1, (
                f"{node}: {counts[NodeRetrying]} NodeRetrying for {record.attempts} attempts"
            )
