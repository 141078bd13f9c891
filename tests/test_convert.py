"""One cattrs converter round-trips every event, command and report through JSON."""

from __future__ import annotations

import json

import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dagtrio
from dagtrio import (
    AddNode,
    AddNodes,
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CancelBranch,
    CommandRejected,
    CustomEvent,
    EmitEvent,
    ExecutionEvent,
    ExecutorCommand,
    HookFailed,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeOutput,
    NodeRecord,
    NodeRef,
    NodeRetrying,
    NodeSkipped,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunIdle,
    RunReport,
    RunResumed,
    SetNodeInputs,
    converter,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=6)
branches = st.lists(st.text("abc-", min_size=1, max_size=3), min_size=1, max_size=3).map("/".join)
refs = st.builds(NodeRef, names, names)
specs = st.builds(
    NodeSpec,
    names,
    id=st.none() | names,
    deps=st.lists(names, max_size=3),
    inputs=st.dictionaries(st.text(max_size=4), json_values, max_size=3),
    timeout=st.none() | st.floats(0.1, 100),
    try_count=st.integers(1, 5),
    retry_delay=st.floats(0, 10),
    branch=st.none() | branches,
)
outputs = st.builds(
    NodeOutput,
    json_values,
    st.booleans(),
    st.none() | st.dictionaries(st.text(max_size=3), json_values, max_size=2),
)
commands = st.deferred(
    lambda: st.one_of(
        st.builds(AddNode, specs, dag_name=st.none() | names),
        st.builds(AddNodes, st.lists(specs, max_size=3)),
        st.builds(
            SetNodeInputs, names, st.dictionaries(st.text(max_size=3), json_values, max_size=2)
        ),
        st.builds(PauseBranch, branches, st.none() | names),
        st.builds(ResumeBranch, branches),
        st.builds(CancelBranch, branches, st.none() | names),
        st.builds(EmitEvent, events),
    )
)
events = st.deferred(
    lambda: st.one_of(
        st.builds(NodeAdded, refs, specs, branches),
        st.builds(NodeStarted, refs, st.integers(1, 9)),
        st.builds(NodeCompleted, refs, outputs),
        st.builds(NodeFailed, refs, names),
        st.builds(NodeRetrying, refs, st.integers(1, 9), names, st.floats(0, 60)),
        st.builds(NodeCancelled, refs, names),
        st.builds(NodeSkipped, refs, names),
        st.builds(BranchPaused, branches, st.none() | names),
        st.builds(BranchResumed, branches),
        st.builds(BranchCancelled, branches, st.none() | names),
        st.builds(CommandRejected, commands, names),
        st.builds(HookFailed, names, names),
        st.builds(RunIdle, st.lists(branches, max_size=2).map(tuple)),
        st.builds(RunResumed),
        st.builds(CustomEvent, names, json_values),
    )
)


@given(events)
def test_every_event_round_trips_through_json(event: ExecutionEvent) -> None:
    text = dagtrio.dumps(event)
    assert json.loads(text)["type"] == type(event).__name__
    assert dagtrio.loads(text, ExecutionEvent) == event


@given(commands)
def test_every_command_round_trips_through_json(command: ExecutorCommand) -> None:
    assert dagtrio.loads(dagtrio.dumps(command), ExecutorCommand) == command


records = st.builds(
    NodeRecord,
    names,
    names,
    branches,
    st.lists(names, max_size=3).map(tuple),
    st.sampled_from(NodeStatus),
    st.integers(0, 5),
    st.none() | st.floats(0, 1e9),
    st.none() | st.floats(0, 1e9),
    st.none() | names,
    json_values,
)


@given(st.dictionaries(names, records, max_size=4), st.booleans(), st.none() | names)
def test_reports_round_trip_through_json(nodes: dict, success: bool, error: str | None) -> None:
    report = RunReport("run-1", "dag", success, nodes, 10.0, 12.5, error)
    assert RunReport.from_json(report.to_json()) == report


def test_unstructured_data_is_plain_json_types() -> None:
    event = NodeCompleted(NodeRef("d", "n"), NodeOutput.ok([1, 2]))
    data = converter.unstructure(event, unstructure_as=ExecutionEvent)
    assert data == {
        "type": "NodeCompleted",
        "node": {"dag": "d", "node": "n"},
        "outcome": {"outputs": [1, 2], "success": True, "metadata": None},
    }


def test_wrong_shapes_are_a_validation_error() -> None:
    with pytest.raises(cattrs.BaseValidationError):
        converter.structure({"type": "NodeStarted", "node": {"dag": "d"}}, ExecutionEvent)


def test_output_that_is_not_json_is_a_clear_type_error() -> None:
    event = NodeCompleted(NodeRef("d", "n"), NodeOutput.ok({1, 2}))
    with pytest.raises(TypeError, match="set"):
        dagtrio.dumps(event)


def test_the_report_of_a_real_run_behaves_as_a_dict_of_records() -> None:
    # A finished run's report builds its records on access; it must still compare,
    # serialise, copy and pickle exactly like the dict of records it stands for.
    import pickle

    registry = dagtrio.ActionRegistry()

    @registry.action()
    async def square(ctx: dagtrio.NodeCtx) -> int:
        return ctx.inputs["x"] ** 2

    @registry.action()
    async def boom(ctx: dagtrio.NodeCtx) -> None:
        raise ValueError("no")

    specs = [
        NodeSpec("square", id="a", inputs={"x": 3}),
        NodeSpec("boom", id="b", branch="side"),
        NodeSpec("square", id="c", deps=["b"], inputs={"x": 1}),
    ]
    report = dagtrio.run_dag_sync(specs, registry, app_data=lambda: None)  # unpicklable
    as_dict = dict(report.nodes)
    assert list(report.nodes) == ["a", "b", "c"] and len(report.nodes) == 3
    assert "a" in report.nodes and "z" not in report.nodes
    assert report.nodes["a"].outputs == 9 and report.nodes["a"] == as_dict["a"]
    assert report.nodes["c"].status is NodeStatus.SKIPPED
    assert report.nodes == as_dict and as_dict == report.nodes
    assert report == RunReport.from_json(report.to_json())
    assert RunReport.from_json(report.to_json()) == report
    assert pickle.loads(pickle.dumps(report)) == report
    assert repr(report.nodes) == repr(as_dict)
    with pytest.raises(KeyError):
        report.nodes["z"]
