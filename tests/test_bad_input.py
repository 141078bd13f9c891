"""Bad input: a clear error naming the node, before the run or as CommandRejected; never
a hang, never a half-applied change."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
from helpers import Probe, work_registry

from dagtrio import (
    AddNode,
    AddNodes,
    CommandRejected,
    CommandRejectedError,
    Coordinator,
    CustomEvent,
    EmitEvent,
    EventHook,
    ExecutionEvent,
    InvalidGraphError,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    RunFinishedError,
    SetNodeInputs,
    run_dag,
)
from dagtrio.testing import RecordingHook

REGISTRY = work_registry()


@pytest.mark.parametrize(
    ("specs", "node", "message"),
    [
        ([NodeSpec("nope", id="a")], "a", "unknown action 'nope'"),
        ([NodeSpec("work", id="a", deps=["ghost"])], "a", "dep 'ghost' is not in the graph"),
        ([NodeSpec("work", id="a"), NodeSpec("work", id="a")], "a", "appears twice"),
        ([NodeSpec("work", id="a", deps=["a"])], "a", "depends on itself"),
        (
            [
                NodeSpec("work", id="a", deps=["c"]),
                NodeSpec("work", id="b", deps=["a"]),
                NodeSpec("work", id="c", deps=["b"]),
                NodeSpec("work", id="d"),
            ],
            None,
            "deps form a cycle: ",
        ),
    ],
)
async def test_bad_initial_graphs_fail_before_anything_starts(
    specs: list[NodeSpec], node: str | None, message: str
) -> None:
    probe = Probe()
    with pytest.raises(InvalidGraphError, match=message) as info:
        await Coordinator(REGISTRY, app_data=probe).run(specs)
    assert probe.attempts == {}
    if node is not None:
        assert info.value.node == node
        assert f"node {node!r}" in str(info.value)


async def test_a_cycle_is_reported_along_its_path() -> None:
    specs = [
        NodeSpec("work", id="a", deps=["c"]),
        NodeSpec("work", id="b", deps=["a"]),
        NodeSpec("work", id="c", deps=["b"]),
    ]
    with pytest.raises(InvalidGraphError) as info:
        await run_dag(specs, REGISTRY)
    path = str(info.value).split("cycle: ")[1].split(" -> ")
    assert path[0] == path[-1] and sorted(path[:-1]) == ["a", "b", "c"]
    spec_of = {spec.id: spec for spec in specs}
    for node, dep in itertools.pairwise(path):
        assert dep in spec_of[node].deps  # read as "node depends on dep"


@pytest.mark.parametrize("bad", [None, "spec", [1], {"action": "work"}])
async def test_specs_that_are_not_node_specs_are_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="NodeSpec"):
        await run_dag(bad, REGISTRY)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_parallel", 0),
        ("max_parallel", -2),
        ("event_capacity", -1),
        ("command_capacity", 1.5),
        ("on_failure", "explode"),
        ("hook_errors", "ignore"),
    ],
)
def test_bad_coordinator_options_are_value_errors(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        Coordinator(REGISTRY, **{option: value})


def test_hooks_must_be_hooks() -> None:
    with pytest.raises(TypeError, match="hook"):
        Coordinator(REGISTRY, hooks=[42])  # type: ignore[list-item]


BAD_COMMANDS = [
    (AddNode(NodeSpec("nope", id="x")), "unknown action 'nope'"),
    (AddNode(NodeSpec("work", id="x", deps=["ghost"])), "dep 'ghost' is not in the graph"),
    (AddNode(NodeSpec("work", id="root")), "id is already in the graph"),
    (AddNode(NodeSpec("work", id="x", deps=["x"])), "depends on itself"),
    (
        AddNodes([NodeSpec("work", id="x"), NodeSpec("work", id="y", deps=["ghost"])]),
        "dep 'ghost'",
    ),
    (
        AddNodes([NodeSpec("work", id="x", deps=["y"]), NodeSpec("work", id="y", deps=["x"])]),
        "cycle",
    ),
    (AddNodes([NodeSpec("work", id="x"), NodeSpec("work", id="x")]), "appears twice"),
    (SetNodeInputs("ghost", {}), "not in the graph"),
    (SetNodeInputs("gate", [1, 2]), "inputs must be a mapping, got list"),  # type: ignore[arg-type]
    (SetNodeInputs("root", {"a": 1}), "already started"),
    (EmitEvent(NodeStarted(None, 1)), "only CustomEvent"),  # type: ignore[arg-type]
    (AddNode(NodeSpec("work", id="x"), dag_name="other"), "DAG 'other'"),
]


@pytest.mark.parametrize(("command", "message"), BAD_COMMANDS)
async def test_bad_commands_from_hooks_are_rejected_whole_and_the_run_goes_on(
    command: Any, message: str, autojump_clock: Any
) -> None:
    class Sender(EventHook):
        async def handle(self, ctx: Any, event: ExecutionEvent) -> Any:
            # While "root" runs (it has started) and "gate" still waits for it.
            if isinstance(event, CustomEvent):
                return [command]
            return None

    recorder = RecordingHook()
    specs = [
        NodeSpec("work", id="root", inputs={"delay": 5}),
        NodeSpec("work", id="gate", deps=["root"]),
        NodeSpec("work", id="after", deps=["gate"]),
    ]

    class Trigger(EventHook):
        async def handle(self, ctx: Any, event: ExecutionEvent) -> Any:
            if isinstance(event, NodeStarted) and event.node.node == "root":
                return EmitEvent(CustomEvent("go"))
            return None

    report = await Coordinator(REGISTRY, [Trigger(), Sender(), recorder], app_data=Probe()).run(
        specs
    )
    rejections = [e for e in recorder.events if isinstance(e, CommandRejected)]
    assert len(rejections) == 1
    assert rejections[0].command == command and message in rejections[0].reason
    assert report.success and set(report.nodes) == {"root", "gate", "after"}
    assert report.nodes["gate"].outputs == 2  # inputs untouched


async def test_submitted_bad_commands_raise_for_the_submitter_and_change_nothing(
    autojump_clock: Any,
) -> None:
    specs = [NodeSpec("work", id="root", inputs={"delay": 10})]
    recorder = RecordingHook()
    coordinator = Coordinator(REGISTRY, [recorder], app_data=Probe())
    async with coordinator.open_run(specs) as run:
        for command, message in BAD_COMMANDS[:8]:
            with pytest.raises(CommandRejectedError, match=message.split("'")[0]) as info:
                await run.submit(command)
            assert info.value.command == command
        assert set(run.graph) == {"root"}
        await run.submit(AddNode(NodeSpec("work", id="late", deps=["root"])))
        with pytest.raises(TypeError, match="ExecutorCommand"):
            await run.submit("AddNode")  # type: ignore[arg-type]
    assert sum(isinstance(e, CommandRejected) for e in recorder.events) == 8
    report = run.report()
    assert report.success and set(report.nodes) == {"root", "late"}
    with pytest.raises(RunFinishedError):
        await run.submit(AddNode(NodeSpec("work", id="too-late")))


async def test_a_rejected_batch_leaves_no_trace_then_a_good_one_applies(
    autojump_clock: Any,
) -> None:
    coordinator = Coordinator(REGISTRY, app_data=Probe())
    async with coordinator.open_run([NodeSpec("work", id="root", inputs={"delay": 1})]) as run:
        batch = [NodeSpec("work", id=f"c{i}", deps=["root"]) for i in range(5)]
        with pytest.raises(CommandRejectedError):
            await run.submit(AddNodes([*batch, NodeSpec("work", id="bad", deps=["nowhere"])]))
        assert list(run.graph) == ["root"]
        # Auto ids handed out for a rejected batch are not burnt either.
        with pytest.raises(CommandRejectedError):
            await run.submit(AddNodes([NodeSpec("work"), NodeSpec("nope")]))
        await run.submit(AddNodes([*batch, NodeSpec("work")]))
    assert set(run.report().nodes) == {"root", "c0", "c1", "c2", "c3", "c4", "work-1"}
    assert all(r.status is NodeStatus.SUCCEEDED for r in run.report().nodes.values())


async def test_nothing_hangs_when_a_hook_returns_garbage() -> None:
    async def garbage(ctx: Any, event: ExecutionEvent) -> Any:
        return ["not a command"]

    with trio.fail_after(5), pytest.raises(TypeError, match="not a command"):
        await run_dag([NodeSpec("work", id="a")], REGISTRY, hooks=[garbage], app_data=Probe())
