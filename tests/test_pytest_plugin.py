"""The pytest plugin and `run_graph`, used the way a user's own test file uses them."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    BranchPaused,
    CommandRejected,
    NodeSpec,
    NodeStatus,
    PauseBranch,
)
from dagtrio.testing import GraphRun, GrowthPlan, dags, growth_plans, hook_schedules, run_graph

pytest_plugins = ["pytester"]

USER_TESTS = """
from hypothesis import given, settings
from dagtrio import ActionRegistry, AddNode, NodeCompleted, NodeSpec, NodeStatus
from dagtrio.testing import dags
import trio

registry = ActionRegistry()

@registry.action()
async def step(ctx):
    await trio.sleep(30)   # virtual seconds: the MockClock jumps
    return ctx.node_id

def planner(limit):
    async def hook(ctx, event):
        # The planner under test: each node completed adds one follow-up, up to limit.
        if isinstance(event, NodeCompleted) and event.node.node.count("+") < limit:
            name = event.node.node + "+"
            return [AddNode(NodeSpec("step", id=name, deps=[event.node.node]))]
    return hook

@settings(max_examples=100, deadline=None)
@given(specs=dags(action="step", max_nodes=8))
def test_planner_grows_every_node(run_graph, specs):
    run = run_graph(registry, specs, hooks=[planner(2)], max_parallel=3)
    assert run.report.success
    assert len(run.report.nodes) == 3 * len(specs)

@settings(max_examples=200, deadline=None)
@given(specs=dags(action="step", min_nodes=1, max_nodes=12))
def test_a_wrong_belief_is_shrunk(run_graph, specs):
    run = run_graph(registry, specs, hooks=[planner(1)])
    # Wrong on purpose: a graph of three or more nodes breaks it.
    assert len(run.report.nodes) < 6

def test_a_clock_for_a_trio_run_of_ones_own(dagtrio_clock):
    async def main():
        await trio.sleep(3600)
        return trio.current_time()
    assert trio.run(main, clock=dagtrio_clock()) >= 3600
"""


def test_a_users_property_tests_run_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    # Both properties ran under @given with the session fixture: no health check
    # failure; the wrong one fails and hypothesis shrinks it to the smallest graph.
    result.assert_outcomes(passed=2, failed=1)
    output = result.stdout.str()
    assert "FailedHealthCheck" not in output
    assert "test_a_wrong_belief_is_shrunk" in output
    # Hypothesis prints the shrunk example ("Failing test case" since 6.131, earlier
    # "Falsifying example") after the traceback, before pytest's summary.
    marker = "Failing test case" if "Failing test case" in output else "Falsifying example"
    shrunk = output[output.index(marker) :]
    shrunk = shrunk[: shrunk.index("short test summary")]
    # Three nodes (the smallest failing graph), each with no deps after shrinking.
    assert shrunk.count("NodeSpec(") == 3, shrunk
    assert "deps=()" in shrunk


REG = ActionRegistry()


@REG.action()
async def wait(ctx: Any) -> str:
    await trio.sleep(ctx.inputs.get("seconds", 60))
    if ctx.inputs.get("fail"):
        raise ValueError("asked to fail")
    return ctx.node_id


def test_run_graph_runs_in_virtual_time_and_checks_the_run() -> None:
    specs = [
        NodeSpec("wait", id="a", inputs={"seconds": 3600}),
        NodeSpec("wait", id="b", deps=["a"], inputs={"seconds": 3600}),
    ]
    run = run_graph(REG, specs)
    assert isinstance(run, GraphRun)
    assert run.report.success
    assert run.report.finished_at - run.report.started_at >= 7200  # virtual: no wait
    kinds = [type(event).__name__ for event in run.events]
    assert kinds.count("NodeCompleted") == 2 and kinds[0] == "NodeAdded"


def test_run_graph_fails_on_what_check_run_catches() -> None:
    class Rejecting:
        async def __call__(self, ctx: Any, event: Any) -> Any:
            from dagtrio import AddNode, NodeStarted

            if isinstance(event, NodeStarted):
                return [AddNode(NodeSpec("wait", id="a"))]  # a duplicate: rejected
            return None

    hook = Rejecting()
    with pytest.raises(AssertionError, match="rejected"):
        run_graph(REG, [NodeSpec("wait", id="a")], hooks=[hook])
    run = run_graph(REG, [NodeSpec("wait", id="a")], hooks=[hook], rejected=1)
    assert run.report.success


def test_run_graph_passes_options_and_reports_a_hang() -> None:
    run = run_graph(
        REG,
        [NodeSpec("wait", id="a", inputs={"fail": True}), NodeSpec("wait", id="b", deps=["a"])],
        on_failure="skip",
    )
    assert run.report.nodes["b"].status is NodeStatus.SKIPPED
    with pytest.raises(trio.TooSlowError):
        run_graph(REG, [NodeSpec("wait", id="a", inputs={"seconds": 1e9})], limit=10)


def test_the_example_test_file_passes(pytester: pytest.Pytester) -> None:
    # The README's "Testing your own graphs" example, run as a user runs it.
    from pathlib import Path

    example = Path(__file__).parents[1] / "examples" / "test_my_planner.py"
    pytester.makepyfile(test_my_planner=example.read_text())
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@settings(max_examples=60, deadline=None)
@given(plan=growth_plans(action="wait"), max_parallel=st.integers(1, 4))
def test_a_growth_plan_ends_with_every_planned_node(plan: GrowthPlan, max_parallel: int) -> None:
    run = run_graph(REG, plan.initial, hooks=[plan.hook()], max_parallel=max_parallel)
    assert run.report.success
    assert set(run.report.nodes) == plan.final_ids
    added = {type(e).__name__ for e in run.events}
    assert "NodeAdded" in added


@settings(max_examples=60, deadline=None)
@given(
    specs=dags(action="wait", max_nodes=8),
    data=st.data(),
)
def test_hook_schedules_steer_runs_that_still_end(
    specs: list[NodeSpec], data: st.DataObject
) -> None:
    # Each spec on one of two branches; pauses, resumes and cancels at generated
    # moments. The run always ends (a pause is lifted once the run is at rest), every
    # command is applied or rejected as the check allows, and a run with no cancel
    # succeeds.
    branches = ["left", "right"]
    placed = [
        attrs.evolve(spec, branch=data.draw(st.sampled_from(branches), label=str(spec.id)))
        for spec in specs
    ]
    cancel = data.draw(st.booleans(), label="cancel")
    schedule = data.draw(hook_schedules(branches, cancel=cancel), label="schedule")
    run = run_graph(REG, placed, hooks=[schedule.hook()])  # and nothing is rejected
    if not cancel:
        assert run.report.success
    # Every command whose moment came was answered: applied (its branch event) or
    # rejected (a CommandRejected), besides the resumes the hook adds at rest.
    answers = ("BranchPaused", "BranchResumed", "BranchCancelled", "CommandRejected")
    answered = [e for e in run.events if type(e).__name__ in answers]
    due = [c for at, c in schedule.steps if at < len(run.events)]
    assert len(answered) >= len(due)
    # Every pause that came due is either in force (its event) or was rejected.
    paused = sum(isinstance(e, BranchPaused) for e in run.events)
    refused = sum(
        isinstance(e, CommandRejected) and isinstance(e.command, PauseBranch) for e in run.events
    )
    assert paused + refused == sum(isinstance(c, PauseBranch) for c in due)


def test_strategies_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one branch"):
        hook_schedules([])


@settings(max_examples=200, deadline=None)
@given(schedule=hook_schedules(["a", "a/b", "c"], max_steps=10))
def test_a_schedule_never_steers_a_branch_after_cancelling_it(schedule: Any) -> None:
    cancelled: list[str] = []
    for _, command in schedule.steps:
        branch = command.branch
        assert not any(branch == gone or branch.startswith(gone + "/") for gone in cancelled)
        if type(command).__name__ == "CancelBranch":
            cancelled.append(branch)
