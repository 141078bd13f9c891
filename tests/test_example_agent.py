"""examples/agent_planner.py: the agent grows its graph, waits for a person, obeys its budget.

The example sleeps to stand for model calls, tools and a person thinking; the
``autojump_clock`` fixture makes those sleeps take no real time.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import dagtrio
from dagtrio import NodeStatus
from dagtrio.testing import check_run

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "agent_planner.py"


def _load_example() -> ModuleType:
    # examples/ is not a package: load the file by path. Registered in sys.modules
    # before it runs, as an import would, so attrs and pickling find its classes.
    spec = importlib.util.spec_from_file_location("agent_planner_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


agent = _load_example()

#: report times are epoch floats (~1.7e9), whose last bit is worth ~2.4e-7 s
EPSILON = 1e-6


@pytest.fixture
async def outcome():
    """One quiet run of the example.

    Tests using it must ask for ``autojump_clock`` themselves: pytest-trio only takes
    a clock from the test's own arguments, and the fixture runs in the test's trio.run.
    """
    return await agent.main(verbose=False)


def _index(events, predicate) -> int:
    """Position of the first event (of ``(elapsed, event)`` pairs) that ``predicate`` accepts."""
    for index, (_, event) in enumerate(events):
        if predicate(event):
            return index
    raise AssertionError("no such event")


def _since_start(report, epoch_time: float) -> float:
    return epoch_time - report.started_at


async def test_graph_grows_one_batch_per_model_answer(autojump_clock, outcome):
    report = outcome.report
    assert outcome.initial_nodes == 1
    assert len(report.nodes) > outcome.initial_nodes
    assert list(report.nodes) == [
        "llm-1",
        "search-1",
        "search-2",
        "read_file-3",
        "continue-1",
        "llm-2",
        "run_shell-4",
        "search-5",
        "continue-2",
        "llm-3",
    ]
    assert report.nodes["continue-1"].deps == ("search-1", "search-2", "read_file-3")
    assert report.nodes["llm-2"].deps == ("continue-1",)
    # Each turn's nodes joined in one NodeAdded burst, right after its llm node completed.
    events = [event for _, event in outcome.events]
    done = _index(outcome.events, lambda e: isinstance(e, dagtrio.NodeCompleted))
    assert events[done].node.node == "llm-1"
    added = [event.node.node for event in events[done + 1 : done + 6]]
    assert added == ["search-1", "search-2", "read_file-3", "continue-1", "llm-2"]


async def test_every_tool_call_gets_its_own_numbered_branch_below_main(autojump_clock, outcome):
    tools = [r for r in outcome.report.nodes.values() if r.action not in ("llm", "continue")]
    assert [r.branch for r in tools] == [f"main/tool-{n}" for n in range(1, 6)]
    for record in tools:
        assert re.fullmatch(r"main/tool-\d+", record.branch)
        assert record.id.endswith(record.branch.removeprefix("main/tool"))
    others = [r for r in outcome.report.nodes.values() if r.action in ("llm", "continue")]
    assert {r.branch for r in others} == {"main"}


async def test_dangerous_tool_starts_only_after_the_person_resumes_its_branch(
    autojump_clock, outcome
):
    events = outcome.events
    paused = _index(events, lambda e: isinstance(e, dagtrio.BranchPaused))
    added = _index(
        events, lambda e: isinstance(e, dagtrio.NodeAdded) and e.node.node == "run_shell-4"
    )
    resumed = _index(events, lambda e: isinstance(e, dagtrio.BranchResumed))
    started = _index(
        events, lambda e: isinstance(e, dagtrio.NodeStarted) and e.node.node == "run_shell-4"
    )
    assert events[paused][1].branch == events[resumed][1].branch == "main/tool-4"
    # Paused before the node even existed, so it could not slip out before the pause.
    assert paused < added < resumed < started

    (approval,) = outcome.approvals
    assert approval.branch == "main/tool-4"
    assert approval.applied
    assert approval.decided_at - approval.paused_at == pytest.approx(agent.THINKING_TIME)
    report = outcome.report
    shell = report.nodes["run_shell-4"]
    assert shell.status is NodeStatus.SUCCEEDED
    assert _since_start(report, shell.started_at) >= approval.decided_at - EPSILON
    waited = _since_start(report, shell.started_at) - approval.paused_at
    assert waited >= agent.THINKING_TIME - EPSILON
    # The rest of the turn did not wait for the person: search-5 started at the pause.
    search = report.nodes["search-5"]
    assert _since_start(report, search.started_at) < approval.paused_at + EPSILON


async def test_spent_token_budget_cancels_the_running_tool_branch_once(autojump_clock, outcome):
    assert outcome.tokens_spent >= outcome.token_budget
    events = [event for _, event in outcome.events]
    notices = [e for e in events if isinstance(e, dagtrio.CustomEvent) and e.name == "budget-spent"]
    assert len(notices) == 1
    cancelled_branches = [e.branch for e in events if isinstance(e, dagtrio.BranchCancelled)]
    assert cancelled_branches == ["main/tool-5"]

    search = outcome.report.nodes["search-5"]
    assert search.status is NodeStatus.CANCELLED
    assert search.attempts == 1  # it was running, not waiting, when the budget ran out
    assert agent.BUDGET_REASON in search.error


async def test_turn_after_a_cancelled_tool_is_skipped_and_the_agent_stops(autojump_clock, outcome):
    report = outcome.report
    statuses = {node_id: record.status for node_id, record in report.nodes.items()}
    assert statuses == {
        "llm-1": NodeStatus.SUCCEEDED,
        "search-1": NodeStatus.SUCCEEDED,
        "search-2": NodeStatus.SUCCEEDED,
        "read_file-3": NodeStatus.SUCCEEDED,
        "continue-1": NodeStatus.SUCCEEDED,
        "llm-2": NodeStatus.SUCCEEDED,
        "run_shell-4": NodeStatus.SUCCEEDED,
        "search-5": NodeStatus.CANCELLED,
        "continue-2": NodeStatus.SKIPPED,
        "llm-3": NodeStatus.SKIPPED,
    }
    assert "search-5" in report.nodes["continue-2"].error
    assert "continue-2" in report.nodes["llm-3"].error
    assert not report.success
    assert outcome.answer is None


async def test_agent_run_obeys_the_lifecycle_rules(autojump_clock, outcome):
    check_run(outcome.report, [event for _, event in outcome.events])


async def test_generous_budget_lets_the_agent_reach_its_final_answer(autojump_clock):
    outcome = await agent.main(verbose=False, token_budget=10_000)
    report = outcome.report
    assert report.success
    assert len(report.nodes) == 10
    assert outcome.answer == agent.SCRIPT[3].answer
    assert not any(isinstance(e, dagtrio.BranchCancelled) for _, e in outcome.events)
    check_run(report, [event for _, event in outcome.events])


async def test_quiet_run_prints_nothing(autojump_clock, capsys):
    await agent.main(verbose=False)
    assert capsys.readouterr().out == ""


def _statuses(report) -> dict[str, tuple[str, int]]:
    return {node: (record.status.value, record.attempts) for node, record in report.nodes.items()}


async def test_a_failed_tool_is_held_for_the_person_who_retries_it_with_new_inputs(
    autojump_clock, outcome
):
    events = outcome.events
    failed = _index(events, lambda e: isinstance(e, dagtrio.NodeFailed))
    idle = _index(events, lambda e: isinstance(e, dagtrio.RunIdle))
    retried = _index(events, lambda e: isinstance(e, dagtrio.NodeRetrying))
    gathered = _index(
        events, lambda e: isinstance(e, dagtrio.NodeStarted) and e.node.node == "continue-1"
    )
    assert events[failed][1].node.node == "read_file-3"
    assert "no such file" in events[failed][1].error
    assert events[idle][1].held == ("read_file-3",)
    # The rest of the turn went on while the tool was held; the turn waited for it.
    assert failed < idle < retried < gathered
    record = outcome.report.nodes["read_file-3"]
    assert record.status is NodeStatus.SUCCEEDED and record.attempts == 2
    assert not record.supplied
    spec_args = [e.spec.inputs.get("args") for _, e in events if isinstance(e, dagtrio.NodeAdded)]
    assert "tests/test_upload.py" in spec_args  # what the model asked for


async def test_after_a_crash_while_held_the_resumed_agent_is_still_held_and_goes_on(
    autojump_clock, tmp_path
):
    # A generous budget: on a MockClock the journal's thread lets time jump, so which
    # tool a tight budget would cancel depends on where the jumps fall.
    outcome = await agent.main(verbose=False, token_budget=10_000)
    crashed = await agent.main(
        verbose=False, token_budget=10_000, journal=tmp_path / "agent.db", crash_while_held=True
    )
    report = crashed.report
    events = [event for _, event in crashed.events]
    resumed = events.index(dagtrio.RunResumed())
    # Still held after the resume: the run says so again, and the person decides then.
    again = next(e for e in events[resumed:] if isinstance(e, dagtrio.RunIdle))
    assert again.held == ("read_file-3",)
    record = report.nodes["read_file-3"]
    assert record.supplied and record.attempts == 1
    assert record.outputs == agent.BY_HAND
    # Otherwise the agent ends exactly as it does without the crash.
    calm = _statuses(outcome.report)
    calm["read_file-3"] = ("succeeded", 1)
    assert _statuses(report) == calm
    assert crashed.answer == outcome.answer == agent.SCRIPT[3].answer
    stored = dagtrio.SqliteJournal(tmp_path / "agent.db", read_only=True).report("agent")
    assert _statuses(stored) == _statuses(report)  # (outputs: tuples come back as lists)
    assert stored.nodes["read_file-3"].supplied
