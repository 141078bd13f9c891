"""Fan-in after growth of unknown size (DESIGN.md §4): ``NodeSpec(defer=True)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from helpers import run_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNode,
    CompleteNode,
    Coordinator,
    ExecutionEvent,
    HookContext,
    InvalidSpecError,
    NodeAdded,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunIdle,
    SqliteJournal,
)
from dagtrio.testing import RecordingHook, check_run

S = NodeStatus


def crawl_registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action()
    async def fetch(ctx: NodeCtx) -> Any:
        await trio.sleep(ctx.inputs.get("t", 1))
        if ctx.attempt <= ctx.inputs.get("fail", 0):
            raise RuntimeError("flaky")
        return ctx.node_id

    @registry.action()
    async def summary(ctx: NodeCtx) -> Any:
        await trio.lowlevel.checkpoint()
        return sorted(key for key in ctx.cache if key.startswith(ctx.inputs.get("prefix", "")))

    return registry


def grower(plan: dict[str, list[tuple[str, float]]], latency: float = 0) -> Any:
    """A planner hook: when a node of the plan completes, add its children (explicit
    ids, each with its own duration) to the node's branch."""

    async def grow(ctx: HookContext, event: ExecutionEvent) -> Any:
        await trio.sleep(latency)
        if isinstance(event, NodeCompleted) and event.node.node in plan:
            parent = event.node.node
            return [
                AddNode(NodeSpec("fetch", id=child, deps=[parent], inputs={"t": t}))
                for child, t in plan[parent]
            ]
        return None

    return grow


def test_a_deferred_summary_runs_once_the_crawl_is_done_while_another_branch_runs() -> None:
    async def main() -> None:
        plan = {"p": [("p.0", 1), ("p.1", 3)], "p.0": [("p.0.0", 2)]}
        recorder = RecordingHook()
        coordinator = Coordinator(crawl_registry(), [grower(plan), recorder])
        specs = [
            NodeSpec("fetch", id="p", branch="crawl"),
            NodeSpec("summary", id="sum", deps=["p"], defer=True, inputs={"prefix": "p"}),
            NodeSpec("fetch", id="elsewhere", inputs={"t": 100}),
        ]
        report = await coordinator.run(specs)
        check_run(report, recorder.events)
        assert report.nodes["sum"].outputs == ["p", "p.0", "p.0.0", "p.1"]
        last = max(report.nodes[n].finished_at or 0 for n in ("p.0.0", "p.1"))
        assert report.nodes["sum"].started_at == last  # at once, not when all is done
        assert report.nodes["elsewhere"].finished_at > last  # type: ignore[operator]

    run_mock(main)


def test_deferred_nodes_do_not_wait_for_each_other_nor_their_dependents() -> None:
    async def main() -> None:
        coordinator = Coordinator(crawl_registry())
        specs = [
            NodeSpec("fetch", id="a", branch="b"),
            NodeSpec("summary", id="d1", deps=["a"], defer=True),
            NodeSpec("summary", id="d2", deps=["a"], defer=True),
            NodeSpec("fetch", id="after-d1", deps=["d1"], inputs={"t": 5}),
            NodeSpec("summary", id="d3", deps=["after-d1"], defer=True),
        ]
        report = await coordinator.run(specs)
        assert report.success
        nodes = report.nodes
        assert nodes["d1"].started_at == nodes["d2"].started_at == nodes["a"].finished_at
        assert nodes["d3"].started_at == nodes["after-d1"].finished_at

    run_mock(main)


def test_a_paused_or_held_node_of_the_branch_keeps_it_from_being_quiet() -> None:
    async def main() -> None:
        registry = crawl_registry()
        coordinator = Coordinator(registry, on_failure="hold")
        specs = [
            NodeSpec("fetch", id="a", branch="b"),
            NodeSpec("fetch", id="flaky", branch="b/sub", inputs={"fail": 1}),
            NodeSpec("fetch", id="later", branch="b/paused"),
            NodeSpec("summary", id="sum", deps=["a"], defer=True),
        ]
        async with coordinator.open_run(specs) as run:
            await run.submit(PauseBranch("b/paused"))
            events = run.events()
            idle = None
            async for event in events:
                if isinstance(event, RunIdle):
                    idle = event
                    break
            assert idle is not None and idle.held == ("flaky",) and idle.branches == ("b/paused",)
            assert run.graph.status("sum") is S.PENDING
            assert run.statistics().deferred == 1
            await run.submit(CompleteNode("flaky", "by hand"))
            await trio.sleep(10)
            assert run.graph.status("sum") is S.PENDING  # "later" is still paused
            await run.submit(ResumeBranch("b/paused"))
        report = run.report()
        assert report.success
        assert report.nodes["sum"].started_at == report.nodes["later"].finished_at

    run_mock(main)


def test_defer_must_be_a_bool() -> None:
    with pytest.raises(InvalidSpecError, match="node 'n': defer must be True or False, got str"):
        NodeSpec("summary", id="n", defer="yes")  # type: ignore[arg-type]


def test_a_deferred_node_survives_a_resume(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    specs = [
        NodeSpec("fetch", id="p", branch="crawl"),
        NodeSpec("fetch", id="slow", branch="crawl", inputs={"t": 50}),
        NodeSpec("summary", id="sum", deps=["p"], defer=True, inputs={"prefix": "p"}),
    ]
    plan = {"p": [("p.0", 1)]}

    async def crash() -> None:
        coordinator = Coordinator(crawl_registry(), [grower(plan)], journal=SqliteJournal(path))
        with trio.move_on_after(10):
            await coordinator.run(specs, run_id="r")

    async def resume() -> Any:
        coordinator = Coordinator(crawl_registry(), [grower(plan)], journal=SqliteJournal(path))
        return await coordinator.resume("r")

    trio.run(crash, clock=trio.testing.MockClock(autojump_threshold=0))
    report = trio.run(resume, clock=trio.testing.MockClock(autojump_threshold=0))
    assert report.success
    assert report.nodes["sum"].outputs == ["p", "p.0"]
    # (Under a MockClock the journal's thread lets time jump, so where the crash fell
    # varies; wherever it fell, the summary starts when the last of its branch ends.)
    last = max(report.nodes[n].finished_at for n in ("p", "p.0", "slow"))  # type: ignore[type-var]
    assert report.nodes["sum"].started_at == last


# ---------------------------------------------------------------------- properties


@st.composite
def growth_plans(draw: Any) -> tuple[dict[str, list[tuple[str, float]]], list[str]]:
    """A tree of node ids under ``r``: which node adds which children, and durations."""
    plan: dict[str, list[tuple[str, float]]] = {}
    frontier = ["r"]
    budget = draw(st.integers(0, 12))
    while frontier and budget:
        parent = frontier.pop(draw(st.integers(0, len(frontier) - 1)))
        count = draw(st.integers(0, min(3, budget)))
        children = [(f"{parent}.{i}", draw(st.sampled_from([0, 1, 2, 5]))) for i in range(count)]
        budget -= count
        if children:
            plan[parent] = children
            frontier.extend(child for child, _ in children)
    return plan, list(plan)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    growth_plans(),
    st.sampled_from([0, 0.5, 3]),
    st.integers(0, 3),
    st.sampled_from([1, 2, 64]),
    st.sampled_from([0, 1, 20]),
    st.booleans(),
)
def test_a_deferred_node_starts_exactly_when_its_branch_can_no_longer_grow(
    grown: Any,
    latency: float,
    event_capacity: int,
    max_parallel: int,
    outside: float,
    nested: bool,
) -> None:
    """A planner grows a branch as its nodes complete (with slow hooks and tiny
    channels); a deferred node there never starts while the branch can still grow (no
    node of it is unfinished, nothing is added to it afterwards), and starts the moment
    it cannot (the last of it has finished and the last event about it passed the
    hooks), whatever runs in another branch meanwhile."""
    plan, _ = grown
    recorder = RecordingHook()
    branch = "crawl/deep" if nested else "crawl"

    async def main() -> Any:
        coordinator = Coordinator(
            crawl_registry(),
            [grower(plan, latency), recorder],
            event_capacity=event_capacity,
            max_parallel=max_parallel,
        )
        specs = [
            NodeSpec("fetch", id="r", branch=branch),
            NodeSpec(
                "summary", id="sum", deps=["r"], defer=True, branch="crawl", inputs={"prefix": "r"}
            ),
            NodeSpec("fetch", id="elsewhere", inputs={"t": outside}),
        ]
        return await coordinator.run(specs)

    report = run_mock(main)
    check_run(report, recorder.events)
    assert report.success
    events = recorder.events
    crawl = {n for n, record in report.nodes.items() if n != "sum" and n != "elsewhere"}
    expected = {"r"} | {child for children in plan.values() for child, _ in children}
    assert crawl == expected  # the whole plan grew
    summary = report.nodes["sum"]
    assert set(expected) <= set(summary.outputs)  # it saw every page
    start = next(
        i for i, e in enumerate(events) if isinstance(e, NodeStarted) and e.node.node == "sum"
    )
    for index, event in enumerate(events):
        node = getattr(event, "node", None)
        if node is not None and node.node in crawl:
            # Everything about the crawl came before the summary started.
            assert index < start, f"{event!r} after the deferred node started"
        if isinstance(event, NodeAdded) and event.branch.startswith("crawl"):
            assert index < start
    # ... and it started as soon as it could: when the last of the crawl finished and
    # its completion had passed the hooks (which take `latency` per event).
    last = max(report.nodes[n].finished_at for n in crawl)  # type: ignore[type-var]
    started = report.nodes["sum"].started_at
    assert started is not None and started >= last
    if latency == 0 and max_parallel == 64:
        assert started == last  # (with fewer slots it may wait for one)
