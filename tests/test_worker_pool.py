"""Worker tasks are reused between attempts (see `Crews._work`).

What an action can tell of it must be what a task of its own gave it: a fresh copy of
the run's context variables per attempt, cancellation of its branch, no task left
over; and the run parks no more workers than ``max_parallel``.
"""

from __future__ import annotations

import contextvars
from typing import Any

import trio
from helpers import run_mock
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNodes,
    CancelBranch,
    Coordinator,
    NodeCompleted,
    NodeSpec,
    NodeStatus,
)

mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


def test_each_attempt_starts_in_a_fresh_context_on_a_reused_worker() -> None:
    registry = ActionRegistry()
    seen: list[tuple[str, str, Any]] = []

    @registry.action()
    async def tag(ctx: Any) -> None:
        # What the previous attempt on this worker set must not show here.
        seen.append((ctx.node_id, mark.get(), trio.lowlevel.current_task()))
        mark.set(ctx.node_id)
        await trio.sleep(0.01)
        assert mark.get() == ctx.node_id  # its own setting holds across its awaits

    specs = [NodeSpec("tag", id="n0")] + [
        NodeSpec("tag", id=f"n{i}", deps=(f"n{i - 1}",)) for i in range(1, 6)
    ]

    async def main() -> None:
        mark.set("run")  # the context the run was started in
        report = await Coordinator(registry, max_parallel=1).run(specs)
        assert report.success

    run_mock(main)
    assert [(node, value) for node, value, _ in seen] == [(f"n{i}", "run") for i in range(6)]
    # One worker ran them all: the pool is in use.
    assert len({id(task) for _, _, task in seen}) == 1


def test_parked_workers_of_a_cancelled_branch_end_and_the_run_goes_on() -> None:
    registry = ActionRegistry()

    gate = trio.Event()

    @registry.action()
    async def quick(ctx: Any) -> str:
        await trio.sleep(0.01)
        return str(ctx.node_id)

    @registry.action()
    async def hold(ctx: Any) -> None:
        await gate.wait()  # keeps the run going meanwhile

    async def main() -> None:
        side = [NodeSpec("quick", id=f"s{i}", branch="main/side") for i in range(6)]
        coordinator = Coordinator(registry, max_parallel=4)
        async with coordinator.open_run([*side, NodeSpec("hold", id="m0")]) as run:
            events = run.events()
            done = set()
            async for event in events:
                if isinstance(event, NodeCompleted):
                    done.add(event.node.node)
                if {f"s{i}" for i in range(6)} <= done:
                    break
            side_crew = run._crews["main/side"]
            await trio.testing.wait_all_tasks_blocked()
            assert side_crew.idle  # its workers wait for more work
            await run.submit(CancelBranch("main/side"))
            await run.submit(
                AddNodes(
                    [NodeSpec("quick", id="s9", branch="main/side"), NodeSpec("quick", id="m1")]
                )
            )
            gate.set()
            async for _ in events:
                pass
            report = await run.wait()
        assert side_crew.scope.cancel_called and not side_crew.idle
        assert report.nodes["s9"].status is NodeStatus.CANCELLED
        assert report.nodes["m1"].status is NodeStatus.SUCCEEDED
        assert run._parked == 0  # every parked worker ended with the run

    run_mock(main)


@settings(max_examples=60, deadline=None)
@given(
    branches=st.lists(
        st.sampled_from(["main", "main/a", "main/b", "x", "x/y"]), min_size=1, max_size=30
    ),
    times=st.lists(st.sampled_from([0.0, 0.001, 0.01]), min_size=1, max_size=30),
    max_parallel=st.integers(1, 4),
)
def test_workers_are_reused_within_bounds_and_every_node_runs_once(
    branches: list[str], times: list[float], max_parallel: int
) -> None:
    registry = ActionRegistry()
    runs: list[str] = []
    holder: dict[str, Any] = {}
    peak = {"parked": 0, "running": 0, "now": 0}

    @registry.action()
    async def work(ctx: Any) -> None:
        assert mark.get() == "unset"
        mark.set(ctx.node_id)
        runs.append(ctx.node_id)
        peak["now"] += 1
        peak["running"] = max(peak["running"], peak["now"])
        peak["parked"] = max(peak["parked"], holder["run"]._parked)
        try:
            delay = ctx.inputs["t"]
            if delay:
                await trio.sleep(delay)
            else:
                await trio.lowlevel.checkpoint()
        finally:
            peak["now"] -= 1

    specs = [
        NodeSpec("work", id=f"n{i}", branch=branch, inputs={"t": times[i % len(times)]})
        for i, branch in enumerate(branches)
    ]

    async def main() -> None:
        async with Coordinator(registry, max_parallel=max_parallel).open_run(specs) as run:
            holder["run"] = run
            report = await run.wait()
        assert report.success
        assert run._parked == 0

    run_mock(main)
    assert sorted(runs) == sorted(spec.id for spec in specs)
    assert peak["running"] <= max_parallel
    assert peak["parked"] <= max_parallel
