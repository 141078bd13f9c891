"""Branches under hypothesis: random DAGs on random branches, random schedules of pause,
resume and cancel from a hook and from outside, every capacity from 0.

The branch state is replayed from the event stream itself (the run's one order), and
every start and completion is checked against it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
from helpers import Probe, run_mock, work_registry
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNode,
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CancelBranch,
    CommandRejected,
    CommandRejectedError,
    Coordinator,
    EventHook,
    ExecutionEvent,
    ExecutorCommand,
    HookContext,
    NodeCancelled,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunFinishedError,
    RunIdle,
    RunReport,
    run_dag,
)
from dagtrio.testing import RecordingHook, check_run

BRANCHES = ["main", "main/a", "main/a/x", "main/b", "side"]


def under(branch: str, root: str) -> bool:
    return branch == root or branch.startswith(root + "/")


commands = st.one_of(
    st.builds(PauseBranch, st.sampled_from(BRANCHES), st.just("hold")),
    st.builds(ResumeBranch, st.sampled_from(BRANCHES)),
    st.builds(CancelBranch, st.sampled_from(BRANCHES), st.just("stop")),
)


@st.composite
def branch_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 10))
    specs = []
    for i in range(count):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []
        specs.append(
            NodeSpec(
                "work",
                id=f"n{i}",
                deps=[f"n{d}" for d in deps],
                branch=draw(st.none() | st.sampled_from(BRANCHES)),
                inputs={"delay": draw(st.sampled_from([0, 1, 3]))},
                try_count=draw(st.integers(1, 2)),
            )
        )
    return {
        "specs": draw(st.permutations(specs)),
        # (virtual time, command) sent from outside with run.submit
        "outside": draw(
            st.lists(st.tuples(st.sampled_from([0, 0.5, 1, 2, 4]), commands), max_size=5)
        ),
        # on NodeCompleted of node k, the hook returns these commands
        "from_hook": draw(
            st.dictionaries(
                st.sampled_from([f"n{i}" for i in range(count)]),
                st.lists(commands, min_size=1, max_size=2),
                max_size=3,
            )
        ),
        # a late AddNode on some branch: lands in a paused or cancelled branch sometimes
        "late": draw(st.none() | st.tuples(st.sampled_from([0.5, 2]), st.sampled_from(BRANCHES))),
        "max_parallel": draw(st.integers(1, 4)),
        "event_capacity": draw(st.integers(0, 2)),
        "command_capacity": draw(st.integers(0, 2)),
    }


class BranchHook(EventHook):
    def __init__(self, plan: dict[str, list[ExecutorCommand]]) -> None:
        self.plan = plan

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeCompleted):
            return self.plan.get(event.node.node)
        return None


def replay_branch_rules(events: list[ExecutionEvent], branch_of: dict[str, str]) -> None:
    """Walk the run's events in order, keeping the paused and cancelled sets, and check
    that no node starts while its branch is paused and nothing on a cancelled branch
    starts or completes after the cancel."""
    paused: set[str] = set()
    cancelled: set[str] = set()
    for event in events:
        if isinstance(event, BranchPaused):
            paused.add(event.branch)
        elif isinstance(event, BranchResumed):
            paused -= {p for p in paused if under(p, event.branch)}
        elif isinstance(event, BranchCancelled):
            cancelled.add(event.branch)
            paused -= {p for p in paused if under(p, event.branch)}
        elif isinstance(event, NodeStarted | NodeCompleted):
            branch = branch_of[event.node.node]
            holding = [p for p in paused if under(branch, p)]
            gone = [c for c in cancelled if under(branch, c)]
            assert not gone, f"{event!r} on {branch} after {gone} was cancelled"
            if isinstance(event, NodeStarted):
                assert not holding, f"{event.node.node} started on {branch} paused by {holding}"


@settings(max_examples=200)
@given(branch_scenarios())
def test_paused_branches_hold_and_cancelled_branches_stay_cancelled(
    scenario: dict[str, Any],
) -> None:
    recorder = RecordingHook()
    probe = Probe()
    coordinator = Coordinator(
        work_registry(),
        [BranchHook(scenario["from_hook"]), recorder],
        max_parallel=scenario["max_parallel"],
        event_capacity=scenario["event_capacity"],
        command_capacity=scenario["command_capacity"],
        app_data=probe,
    )

    refusals: list[str] = []

    async def submit(run: Any, command: ExecutorCommand) -> None:
        try:
            await run.submit(command)
        except CommandRejectedError as exc:
            refusals.append(exc.reason)
        except RunFinishedError:
            pass  # the run may well end before the schedule does

    async def outside(run: Any) -> None:
        now = 0.0
        schedule = sorted(scenario["outside"], key=lambda item: item[0])
        for at, command in schedule:
            await trio.sleep(at - now)
            now = at
            await submit(run, command)

    async def late(run: Any) -> None:
        at, branch = scenario["late"]
        await trio.sleep(at)
        await submit(run, AddNode(NodeSpec("work", id="late", branch=branch)))

    async def main() -> RunReport:
        async with coordinator.open_run(scenario["specs"]) as run:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(outside, run)
                if scenario["late"] is not None:
                    nursery.start_soon(late, run)
            # A person who never came back: after a while, let everything go.
            await trio.sleep(50)
            if not run.finished:
                await submit(run, ResumeBranch("main"))
                await submit(run, ResumeBranch("side"))
                await trio.sleep(50)
                await run.shutdown(grace=0)
        return await run.wait()

    report = run_mock(main)
    # The only legitimate refusal here: touching a cancelled branch.
    check_run(report, recorder.events, rejected=lambda e: "cancelled" in e.reason)
    assert probe.violations == []
    branch_of = {node: record.branch for node, record in report.nodes.items()}
    replay_branch_rules(recorder.events, branch_of)
    # Every node ended somewhere final, and a node on a cancelled branch that had not
    # finished by the time of the cancel ended CANCELLED.
    for event_index, event in enumerate(recorder.events):
        if isinstance(event, BranchCancelled):
            later_finals = {
                e.node.node: e
                for e in recorder.events[event_index:]
                if isinstance(e, NodeCancelled | NodeCompleted)
            }
            for node, final in later_finals.items():
                if under(branch_of[node], event.branch):
                    assert isinstance(final, NodeCancelled), node
    # The only legitimate refusal here: touching a cancelled branch.
    rejected = [e.reason for e in recorder.events if isinstance(e, CommandRejected)]
    assert all("cancelled" in reason for reason in rejected + refusals)


async def test_branch_commands_on_unknown_branches_apply_but_say_so(autojump_clock: Any) -> None:
    recorder = RecordingHook()
    async with Coordinator(work_registry(), [recorder], app_data=Probe()).open_run(
        [NodeSpec("work", id="a", inputs={"delay": 5})]
    ) as run:
        await run.submit(PauseBranch("main/tool-9", reason="approve first"))
        await run.submit(AddNode(NodeSpec("work", id="tool", branch="main/tool-9")))
        await trio.sleep(10)
        assert run.graph.status("tool") is NodeStatus.READY  # the early pause held
        await run.submit(ResumeBranch("main/tool-9"))
        await run.submit(CancelBranch("typo/branch"))
    branch_events = [
        e for e in recorder.events if isinstance(e, BranchPaused | BranchResumed | BranchCancelled)
    ]
    assert branch_events == [
        BranchPaused("main/tool-9", "approve first", known=False),
        BranchResumed("main/tool-9", known=True),
        BranchCancelled("typo/branch", None, known=False),
    ]
    assert run.report().nodes["tool"].status is NodeStatus.SUCCEEDED


async def test_resuming_or_pausing_a_cancelled_branch_is_rejected_with_a_reason(
    autojump_clock: Any,
) -> None:
    specs = [
        NodeSpec("work", id="a", branch="main/x", inputs={"delay": 5}),
        NodeSpec("work", id="keeps-the-run-going", inputs={"delay": 5}),
    ]
    async with Coordinator(work_registry(), app_data=Probe()).open_run(specs) as run:
        await run.submit(CancelBranch("main/x"))
        with pytest.raises(
            CommandRejectedError, match=r"'main/x/deeper' was cancelled \(as part of 'main/x'\)"
        ):
            await run.submit(ResumeBranch("main/x/deeper"))
        with pytest.raises(CommandRejectedError, match="is cancelled"):
            await run.submit(PauseBranch("main/x"))
        with pytest.raises(CommandRejectedError, match="is not a path"):
            await run.submit(PauseBranch("main//x"))
    assert run.report().nodes["a"].status is NodeStatus.CANCELLED


async def test_idle_runs_wait_for_a_person_and_announce_it_once_per_idle_period(
    autojump_clock: Any,
) -> None:
    recorder = RecordingHook()
    specs = [
        NodeSpec("work", id="a", branch="main/x"),
        NodeSpec("work", id="b", deps=["a"]),
    ]
    async with Coordinator(work_registry(), [recorder], app_data=Probe()).open_run(specs) as run:
        await run.submit(PauseBranch("main/x", reason="ask"))
        await trio.sleep(100)
        assert run.idle and not run.finished
        # Queue the next question before letting the first branch go, so the run
        # never runs out of work in between.
        await run.submit(PauseBranch("main/y"))
        await run.submit(AddNode(NodeSpec("work", id="c", branch="main/y")))
        await run.submit(ResumeBranch("main/x"))
        await trio.sleep(100)
        assert run.graph.status("b") is NodeStatus.SUCCEEDED
        assert run.idle
        await run.submit(ResumeBranch("main"))
    idles = [e for e in recorder.events if isinstance(e, RunIdle)]
    assert idles == [RunIdle(("main/x",)), RunIdle(("main/y",))]
    assert run.report().success


async def test_a_sync_action_that_overruns_its_timeout_frees_its_slot_and_says_so() -> None:
    registry = ActionRegistry()
    release = threading.Event()

    @registry.action()
    def stuck(ctx: NodeCtx) -> str:
        release.wait(timeout=30)
        return "too late"

    @registry.action()
    async def quick(ctx: NodeCtx) -> str:
        return "ran"

    specs = [NodeSpec("stuck", id="s", timeout=0.05), NodeSpec("quick", id="q", deps=["s"])]
    try:
        report = await run_dag([*specs, NodeSpec("quick", id="free")], registry, max_parallel=1)
    finally:
        release.set()
    record = report.nodes["s"]
    assert record.status is NodeStatus.FAILED
    assert record.error is not None and "abandoned (it may still be running)" in record.error
    # The slot came back while the thread was still stuck: the other node ran.
    assert report.nodes["free"].status is NodeStatus.SUCCEEDED
    assert report.nodes["q"].status is NodeStatus.SKIPPED
