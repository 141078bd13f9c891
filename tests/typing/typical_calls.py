"""Typical calls of the public API, with the types users get back."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, assert_type

import trio

import dagtrio
from dagtrio import (
    ActionRegistry,
    AddNodes,
    CancelBranch,
    CommandRejectedError,
    Coordinator,
    CustomEvent,
    EmitEvent,
    EventStream,
    GraphView,
    InvalidSpecError,
    NodeCtx,
    NodeOutput,
    NodeSpec,
    NodeStatus,
    ResumeBranch,
    Run,
    RunReport,
    RunStatistics,
    SetNodeInputs,
    run_dag,
    run_dag_sync,
)
from dagtrio.testing import RecordingHook, check_run, dags

registry = ActionRegistry(max_threads=4)


@registry.action("parse")
async def parse(ctx: NodeCtx) -> NodeOutput:
    if ctx.attempt > 1:
        return NodeOutput.failed("no luck", attempt=ctx.attempt)
    return NodeOutput.ok({"rows": ctx.inputs.get("rows", 0)}, source="file")


@registry.action
def plain(ctx: NodeCtx) -> None:
    assert_type(ctx.inputs, Mapping[str, Any])
    assert_type(ctx.upstream, Mapping[str, Any])


# The decorator gives the function back unchanged, so it stays callable in tests.
still_async: Callable[[NodeCtx], Coroutine[Any, Any, NodeOutput]] = parse
still_sync: Callable[[NodeCtx], None] = plain


def specs() -> list[NodeSpec]:
    return [
        NodeSpec("parse", id="a", inputs={"rows": 3}, timeout=2.5, try_count=3),
        NodeSpec("parse", id="b", deps=["a"]),
        NodeSpec("parse", id="c", deps=("a", "b"), retry_delay=0.5, branch="main/tool-1"),
        NodeSpec("plain", deps={"a"}, cache=False),
    ]


async def use_a_run() -> None:
    coordinator = Coordinator(
        registry,
        max_parallel=8,
        event_capacity=0,
        command_capacity=1,
        on_failure="fail_fast",
        hook_errors="isolate",
        app_data={"user": "me"},
    )
    async with coordinator.open_run(specs(), dag_name="etl", run_id="r1") as run:
        assert_type(run, Run)
        stream = run.events()
        assert_type(stream, EventStream)
        graph = run.graph
        assert_type(graph, GraphView)
        assert_type(graph.status("a"), NodeStatus)
        assert_type(run.statistics(), RunStatistics)
        try:
            await run.submit(SetNodeInputs("b", {"rows": 5}))
            await run.submit(AddNodes([NodeSpec("parse", id="d", deps=["a"])]))
            await run.submit(EmitEvent(CustomEvent("progress", {"done": 1})))
            await run.submit(CancelBranch("main/tool-1", reason="not needed"))
            await run.submit(ResumeBranch("main"))
        except CommandRejectedError as exc:
            print(exc.reason)
        await run.shutdown(grace=5)
        run.cancel()
        async with stream:
            async for event in stream:
                print(event)
    report = await run.wait()
    assert_type(report, RunReport)
    assert_type(report.counts(), dict[NodeStatus, int])
    assert_type(report.outputs(), dict[str, Any])
    again = RunReport.from_json(report.to_json(indent=2))
    assert_type(again, RunReport)
    assert_type(dagtrio.dumps(report), str)
    assert_type(dagtrio.loads("{}", RunReport), RunReport)


async def one_call() -> RunReport:
    return await run_dag(specs(), registry, max_parallel=4, dag_name="etl")


def for_scripts() -> RunReport:
    return run_dag_sync(specs(), registry)


def bad_spec() -> str:
    try:
        NodeSpec("parse", id="x", try_count=0)
    except InvalidSpecError as exc:
        return f"{exc.node}: {exc.reason}"
    return "fine"


async def test_helpers() -> None:
    hook = RecordingHook(latency=0.01, name="recorder")
    report = await Coordinator(registry, [hook]).run(specs())
    check_run(report, hook.events, try_counts={"a": 3}, rejected=0)
    check_run(report, hook.events, rejected=lambda event: "duplicate" in event.reason)
    strategy = dags(action=["parse", "plain"], max_nodes=10)
    print(strategy)


class Timings(dagtrio.Instrument):
    def __init__(self) -> None:
        self.started: dict[dagtrio.Attempt, float] = {}

    def attempt_started(self, attempt: dagtrio.Attempt) -> None:
        self.started[attempt] = trio.current_time()

    def attempt_finished(
        self, attempt: dagtrio.Attempt, status: NodeStatus, ended: str, error: str | None
    ) -> None:
        took = trio.current_time() - self.started.pop(attempt)
        print(attempt.action, attempt.number, status.value, ended, error, took)


async def instrumented() -> RunReport:
    return await Coordinator(registry, instruments=[Timings()]).run(specs())


def main() -> None:
    trio.run(use_a_run)
