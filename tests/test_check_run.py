"""`dagtrio.testing.check_run` catches what it promises: each check fails on a bad run."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
from helpers import work_registry

from dagtrio import (
    AddNode,
    CommandRejected,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    NodeCompleted,
    NodeRecord,
    NodeSpec,
    NodeStatus,
    RunReport,
)
from dagtrio.testing import RecordingHook, check_run

REG = work_registry()
DUPLICATE = "node 'a': id is already in the graph"


class AddsDuplicates(EventHook):
    """A buggy planner: when ``a`` completes it adds ``a`` again, ``times`` times."""

    def __init__(self, times: int = 1) -> None:
        self.times = times

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeCompleted) and event.node.node == "a":
            return [AddNode(NodeSpec("noop", id="a")) for _ in range(self.times)]
        return None


async def run_with(*hooks: EventHook) -> tuple[RunReport, list[ExecutionEvent]]:
    recorder = RecordingHook()
    report = await Coordinator(REG, [*hooks, recorder]).run(
        [NodeSpec("noop", id="a"), NodeSpec("noop", id="b", deps=["a"])]
    )
    return report, recorder.events


def report_of(*statuses: NodeStatus, success: bool, error: str | None = None) -> RunReport:
    nodes = {
        f"n{i}": NodeRecord(
            id=f"n{i}",
            action="noop",
            branch="main",
            deps=(),
            status=status,
            attempts=0 if status is NodeStatus.SKIPPED else 1,
            started_at=None if status is NodeStatus.SKIPPED else 1.0,
            finished_at=2.0,
        )
        for i, status in enumerate(statuses)
    }
    return RunReport("r", "dag", success, nodes, started_at=0.0, finished_at=3.0, error=error)


# ------------------------------------------------------------------ empty event lists


async def test_a_recorder_that_was_never_installed_fails_the_check() -> None:
    report, events = await run_with()
    check_run(report, events)
    never_installed = RecordingHook()
    with pytest.raises(AssertionError, match=r"no events were recorded.*hook installed"):
        check_run(report, never_installed.events)
    with pytest.raises(AssertionError, match="no events were recorded"):
        check_run(report, iter([]))


async def test_without_events_the_report_alone_is_checked() -> None:
    report, _ = await run_with()
    check_run(report)
    check_run(report, None)


# --------------------------------------------------------------- rejected commands


async def test_an_unexpected_rejection_fails_the_check_and_names_its_reason() -> None:
    report, events = await run_with(AddsDuplicates())
    assert report.success  # the run itself shrugs a rejected command off
    with pytest.raises(AssertionError, match="1 CommandRejected events, expected 0") as info:
        check_run(report, events)
    assert f"AddNode rejected: {DUPLICATE}" in str(info.value)


async def test_an_expected_number_of_rejections_passes_and_any_other_number_fails() -> None:
    report, events = await run_with(AddsDuplicates(times=2))
    check_run(report, events, rejected=2)
    with pytest.raises(AssertionError, match="2 CommandRejected events, expected 1"):
        check_run(report, events, rejected=1)
    with pytest.raises(AssertionError, match="2 CommandRejected events, expected 3"):
        check_run(report, events, rejected=3)


async def test_a_predicate_allows_the_rejections_it_expects_and_fails_on_others() -> None:
    report, events = await run_with(AddsDuplicates(times=2))
    check_run(report, events, rejected=lambda event: "already in the graph" in event.reason)
    with pytest.raises(
        AssertionError, match=re.escape(f"unexpected rejection: AddNode rejected: {DUPLICATE}")
    ):
        check_run(report, events, rejected=lambda event: "no such action" in event.reason)


async def test_a_predicate_sees_each_rejection_event() -> None:
    report, events = await run_with(AddsDuplicates(times=2))
    seen: list[CommandRejected] = []
    check_run(report, events, rejected=lambda event: seen.append(event) is None)
    assert [event.reason for event in seen] == [DUPLICATE, DUPLICATE]


async def test_a_run_without_rejections_passes_a_predicate_and_fails_a_count() -> None:
    report, events = await run_with()
    check_run(report, events, rejected=lambda event: False)
    with pytest.raises(AssertionError, match="0 CommandRejected events, expected 1"):
        check_run(report, events, rejected=1)


@pytest.mark.parametrize(
    ("rejected", "error", "message"),
    [
        (True, TypeError, "takes a count or a predicate, not True"),
        ("1", TypeError, "takes a count or a predicate, not '1'"),
        (-1, ValueError, "must be >= 0, got -1"),
    ],
)
async def test_a_bad_rejected_argument_is_refused(
    rejected: Any, error: type[Exception], message: str
) -> None:
    report, events = await run_with()
    with pytest.raises(error, match=message):
        check_run(report, events, rejected=rejected)


async def test_rejected_without_events_is_refused() -> None:
    report, _ = await run_with()
    with pytest.raises(TypeError, match="rejected= needs events"):
        check_run(report, rejected=1)
    with pytest.raises(TypeError, match="rejected= needs events"):
        check_run(report, rejected=lambda event: True)


# ------------------------------------------------------------- the success flag


@pytest.mark.parametrize(
    "statuses",
    [(NodeStatus.SUCCEEDED, NodeStatus.FAILED), (NodeStatus.SKIPPED,), (NodeStatus.CANCELLED,)],
)
def test_success_with_a_node_that_did_not_succeed_fails(statuses: tuple[NodeStatus, ...]) -> None:
    check_run(report_of(*statuses, success=False))
    with pytest.raises(AssertionError, match="success is true but not every node succeeded"):
        check_run(report_of(*statuses, success=True))


@pytest.mark.parametrize("count", [0, 1, 3])
def test_no_success_though_every_node_succeeded_and_no_error_fails(count: int) -> None:
    statuses = [NodeStatus.SUCCEEDED] * count
    check_run(report_of(*statuses, success=True))
    with pytest.raises(AssertionError, match="success is false but every node succeeded"):
        check_run(report_of(*statuses, success=False))


def test_no_success_with_every_node_succeeded_passes_when_the_error_says_why() -> None:
    failed_hook = "hook Bad raised in on_complete: RuntimeError: sink down"
    check_run(report_of(NodeStatus.SUCCEEDED, success=False, error=failed_hook))


async def test_a_shutdown_after_every_node_succeeded_passes(autojump_clock: Any) -> None:
    recorder = RecordingHook(latency=10)  # still busy with the last events at the shutdown
    async with Coordinator(REG, [recorder]).open_run([NodeSpec("noop", id="a")]) as run:
        await trio.sleep(1)
        assert run.report().nodes["a"].status is NodeStatus.SUCCEEDED
        await run.shutdown(grace=0)
    report = await run.wait()
    assert not report.success and report.error is not None
    check_run(report, recorder.events)
