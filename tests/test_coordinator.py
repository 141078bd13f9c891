"""Examples of the coordinator's behaviour, one per rule of DESIGN.md sections 1 and 2."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
from helpers import Probe, work_registry

from dagtrio import (
    ActionRegistry,
    AddNode,
    AddNodes,
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CancelBranch,
    Coordinator,
    CustomEvent,
    EmitEvent,
    EventHook,
    ExecutionEvent,
    HookContext,
    HookFailed,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeCtx,
    NodeFailed,
    NodeOutput,
    NodeRetrying,
    NodeSkipped,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunIdle,
    RunReport,
    SetNodeInputs,
    run_dag,
    run_dag_sync,
)
from dagtrio.testing import RecordingHook, check_run

REG = work_registry()


def names(events: list[ExecutionEvent]) -> list[str]:
    return [
        f"{type(e).__name__}:{e.node.node}" if hasattr(e, "node") else type(e).__name__
        for e in events
    ]


async def test_outputs_flow_to_upstream_and_cache() -> None:
    registry = ActionRegistry()
    seen: dict[str, Any] = {}

    @registry.action()
    async def emit(ctx: NodeCtx) -> int:
        return ctx.inputs["v"]

    @registry.action()
    async def combine(ctx: NodeCtx) -> int:
        seen["upstream"] = dict(ctx.upstream)
        seen["cache"] = dict(ctx.cache)
        seen["ctx"] = (ctx.dag_name, ctx.node_id, ctx.attempt, ctx.branch, ctx.app_data)
        return sum(ctx.upstream.values())

    specs = [
        NodeSpec("emit", id="a", inputs={"v": 2}),
        NodeSpec("emit", id="b", inputs={"v": 3}),
        NodeSpec("emit", id="unrelated", inputs={"v": 100}),
        NodeSpec("combine", id="c", deps=["a", "b", "unrelated"], branch="main/sum"),
    ]
    report = await run_dag(specs, registry, dag_name="math", app_data="app")
    assert report.success and report.dag_name == "math"
    assert report.nodes["c"].outputs == 105
    assert seen["upstream"] == {"a": 2, "b": 3, "unrelated": 100}
    assert seen["cache"] == {"a": 2, "b": 3, "unrelated": 100}
    assert seen["ctx"] == ("math", "c", 1, "main/sum", "app")
    assert report.outputs() == {"a": 2, "b": 3, "unrelated": 100, "c": 105}


def test_run_dag_sync_for_scripts() -> None:
    report = run_dag_sync([NodeSpec("noop", id="x")], REG, run_id="my-run")
    assert report.success and report.run_id == "my-run"
    assert report.counts() == {NodeStatus.SUCCEEDED: 1}


async def test_branches_are_inherited_from_the_first_dep() -> None:
    specs = [
        NodeSpec("noop", id="root"),
        NodeSpec("noop", id="tool", deps=["root"], branch="main/tool-1"),
        NodeSpec("noop", id="after", deps=["tool", "root"]),
        NodeSpec("noop", id="join", deps=["root", "tool"]),
    ]
    report = await run_dag(specs, REG)
    branches = {node: record.branch for node, record in report.nodes.items()}
    assert branches == {
        "root": "main",
        "tool": "main/tool-1",
        "after": "main/tool-1",
        "join": "main",
    }


async def test_a_reader_subscribed_first_sees_the_whole_run_without_hooks() -> None:
    specs = [NodeSpec("work", id="a"), NodeSpec("work", id="b", deps=["a"])]
    async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
        events = [event async for event in run.events()]
    assert names(events) == [
        "NodeAdded:a",
        "NodeAdded:b",
        "NodeStarted:a",
        "NodeCompleted:a",
        "NodeStarted:b",
        "NodeCompleted:b",
    ]
    check_run(run.report(), events)


async def test_on_start_seeds_the_graph_before_anything_starts() -> None:
    class Planner(EventHook):
        async def on_start(self, ctx: HookContext) -> Any:
            assert list(ctx.graph) == ["given"]
            return [AddNodes([NodeSpec("noop", id="seeded"), NodeSpec("noop", id="s2")])]

    recorder = RecordingHook()
    report = await Coordinator(REG, [Planner(), recorder]).run([NodeSpec("noop", id="given")])
    assert report.success and set(report.nodes) == {"given", "seeded", "s2"}
    first_start = next(i for i, e in enumerate(recorder.events) if isinstance(e, NodeStarted))
    added = [e.node.node for e in recorder.events[:first_start] if isinstance(e, NodeAdded)]
    assert added == ["given", "seeded", "s2"]


async def test_an_empty_graph_seeded_only_by_a_hook_runs() -> None:
    class Planner(EventHook):
        async def on_start(self, ctx: HookContext) -> Any:
            return AddNode(NodeSpec("noop", id="only"))

    report = await Coordinator(REG, [Planner()]).run([])
    assert report.success and list(report.nodes) == ["only"]
    assert (await run_dag([], REG)).success


async def test_a_hook_sees_its_own_commands_applied_by_its_next_event() -> None:
    checks: list[bool] = []

    class Planner(EventHook):
        planned = False

        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            if self.planned:
                checks.append("child" in ctx.graph)
            if isinstance(event, NodeCompleted) and event.node.node == "root":
                self.planned = True
                return AddNode(NodeSpec("noop", id="child", deps=["root"]))
            return None

    report = await Coordinator(REG, [Planner()]).run([NodeSpec("noop", id="root")])
    assert report.success and checks and all(checks)


async def test_a_hook_can_grow_the_graph_after_the_last_completion() -> None:
    class Continue(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            if isinstance(event, NodeCompleted):
                index = int(event.node.node[4:])
                if index < 5:
                    await trio.lowlevel.checkpoint()  # take a turn, as a real planner would
                    return AddNode(NodeSpec("noop", id=f"step{index + 1}"))
            return None

    report = await Coordinator(REG, [Continue()]).run([NodeSpec("noop", id="step0")])
    assert list(report.nodes) == [f"step{i}" for i in range(6)]
    assert report.success


async def test_nodes_added_under_finished_deps_are_ready_or_skipped_at_once() -> None:
    recorder = RecordingHook()

    class Grow(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            if isinstance(event, NodeFailed):
                return [
                    AddNode(NodeSpec("noop", id="under-ok", deps=["ok"])),
                    AddNodes(
                        [
                            NodeSpec("noop", id="under-bad", deps=["bad"]),
                            NodeSpec("noop", id="below", deps=["under-bad"]),
                        ]
                    ),
                ]
            return None

    specs = [
        NodeSpec("work", id="ok"),
        NodeSpec("work", id="bad", deps=["ok"], inputs={"fail": 1}),
    ]
    report = await Coordinator(REG, [Grow(), recorder], app_data=Probe()).run(specs)
    statuses = {n: r.status for n, r in report.nodes.items()}
    assert statuses == {
        "ok": NodeStatus.SUCCEEDED,
        "bad": NodeStatus.FAILED,
        "under-ok": NodeStatus.SUCCEEDED,
        "under-bad": NodeStatus.SKIPPED,
        "below": NodeStatus.SKIPPED,
    }
    assert report.nodes["under-bad"].error == "dep 'bad' failed"
    assert report.nodes["below"].error == "dep 'under-bad' was skipped"
    seen = names(recorder.events)
    # The batch under the failed dep is added and skipped in one step.
    start = seen.index("NodeAdded:under-bad")
    assert seen[start : start + 4] == [
        "NodeAdded:under-bad",
        "NodeAdded:below",
        "NodeSkipped:under-bad",
        "NodeSkipped:below",
    ]
    assert seen.index("NodeAdded:under-ok") < seen.index("NodeStarted:under-ok")
    assert not report.success


async def test_failures_skip_dependents_and_the_rest_goes_on() -> None:
    specs = [
        NodeSpec("work", id="bad", inputs={"fail": 9}),
        NodeSpec("work", id="child", deps=["bad"]),
        NodeSpec("work", id="grandchild", deps=["child"]),
        NodeSpec("work", id="independent"),
    ]
    report = await run_dag(specs, REG, app_data=Probe())
    assert report.nodes["bad"].status is NodeStatus.FAILED
    assert report.nodes["bad"].error == "RuntimeError: planned failure 1"
    assert report.nodes["child"].status is NodeStatus.SKIPPED
    assert report.nodes["grandchild"].status is NodeStatus.SKIPPED
    assert report.nodes["independent"].status is NodeStatus.SUCCEEDED
    assert not report.success


async def test_a_failed_node_output_is_a_failed_attempt() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def soft(ctx: NodeCtx) -> NodeOutput:
        return NodeOutput.failed("rate limited")

    report = await run_dag([NodeSpec("soft", id="s", try_count=2)], registry)
    assert report.nodes["s"].status is NodeStatus.FAILED
    assert report.nodes["s"].attempts == 2 and report.nodes["s"].error == "rate limited"


@pytest.mark.parametrize("listening", [False, True])
async def test_what_an_action_returns_is_what_the_report_and_the_hooks_get(
    listening: bool,
) -> None:
    registry = ActionRegistry()

    @registry.action()
    async def plain(ctx: NodeCtx) -> dict[str, int]:
        return {"rows": 3}

    @registry.action()
    async def wrapped(ctx: NodeCtx) -> NodeOutput:
        return NodeOutput.ok([1, 2], cost=0.5)

    @registry.action()
    async def unexplained(ctx: NodeCtx) -> NodeOutput:
        return NodeOutput(success=False)

    class Direct:  # a NodeAction that is not a function, returning a plain value
        name = "direct"

        async def execute(self, ctx: NodeCtx) -> Any:
            return "as is"

    registry.register(Direct())  # type: ignore[arg-type]
    recorder = RecordingHook()
    specs = [NodeSpec(name, id=name) for name in ("plain", "wrapped", "unexplained", "direct")]
    report = await Coordinator(registry, [recorder] if listening else []).run(specs)
    assert report.outputs() == {"plain": {"rows": 3}, "wrapped": [1, 2], "direct": "as is"}
    assert report.nodes["unexplained"].status is NodeStatus.FAILED
    assert report.nodes["unexplained"].error == "action reported failure"
    if listening:
        completed = {
            e.node.node: e.outcome for e in recorder.events if isinstance(e, NodeCompleted)
        }
        assert completed == {
            "plain": NodeOutput.ok({"rows": 3}),
            "wrapped": NodeOutput.ok([1, 2], cost=0.5),
            "direct": NodeOutput.ok("as is"),
        }


async def test_retries_back_off_exponentially(autojump_clock: Any) -> None:
    recorder = RecordingHook()
    spec = NodeSpec("work", id="flaky", inputs={"fail": 3}, try_count=4, retry_delay=1.5)
    probe = Probe()
    report = await Coordinator(REG, [recorder], app_data=probe).run([spec])
    assert report.nodes["flaky"].status is NodeStatus.SUCCEEDED
    assert report.nodes["flaky"].attempts == 4
    retries = [e for e in recorder.events if isinstance(e, NodeRetrying)]
    assert [(e.attempt, e.delay) for e in retries] == [(1, 1.5), (2, 3.0), (3, 6.0)]
    starts = probe.start_times["flaky"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1.5, 3.0, 6.0])
    check_run(report, recorder.events)


async def test_a_timeout_is_a_failed_attempt(autojump_clock: Any) -> None:
    recorder = RecordingHook()
    specs = [NodeSpec("work", id="slow", inputs={"delay": 10}, timeout=2, try_count=2)]
    report = await Coordinator(REG, [recorder], app_data=Probe()).run(specs)
    record = report.nodes["slow"]
    assert record.status is NodeStatus.FAILED and record.attempts == 2
    assert record.error == "timed out after 2s (attempt 2)"
    assert record.finished_at - record.started_at == pytest.approx(4.0)
    assert [type(e) for e in recorder.events if not isinstance(e, NodeAdded)] == [
        NodeStarted,
        NodeRetrying,
        NodeStarted,
        NodeFailed,
    ]


async def test_hook_errors_fail_raises_the_hooks_own_exception() -> None:
    class Boom(Exception):
        pass

    completed: list[bool] = []

    class Fragile(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            if isinstance(event, NodeStarted):
                raise Boom("hook broke")

        async def on_complete(self, ctx: HookContext, success: bool) -> None:
            completed.append(success)

    specs = [NodeSpec("work", id="a", inputs={"delay": 10})]
    coordinator = Coordinator(REG, [Fragile()], app_data=Probe())
    with trio.fail_after(5), pytest.raises(Boom, match="hook broke"):
        async with coordinator.open_run(specs) as run:
            pass
    assert completed == [False]
    report = run.report()
    assert not report.success
    assert report.nodes["a"].status is NodeStatus.CANCELLED
    assert "hook Fragile raised Boom: hook broke" in (report.error or "")
    with pytest.raises(Boom):
        await run.wait()


async def test_hook_errors_isolate_emits_hook_failed_and_keeps_delivering() -> None:
    class Flaky(EventHook):
        name = "flaky"
        calls = 0

        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            self.calls += 1
            if isinstance(event, NodeStarted):
                raise ValueError("oops")

    flaky, recorder = Flaky(), RecordingHook()
    specs = [NodeSpec("noop", id="a"), NodeSpec("noop", id="b", deps=["a"])]
    report = await Coordinator(REG, [flaky, recorder], hook_errors="isolate").run(specs)
    assert report.success
    failures = [e for e in recorder.events if isinstance(e, HookFailed)]
    assert failures == [HookFailed("flaky", "ValueError: oops")] * 2
    # Every event reached the flaky hook, including the HookFailed events about itself.
    assert flaky.calls == len(recorder.events)


async def test_on_start_failure_fails_the_run_before_any_node_starts() -> None:
    class Broken(EventHook):
        async def on_start(self, ctx: HookContext) -> None:
            raise KeyError("config")

    probe = Probe()
    with pytest.raises(KeyError):
        await Coordinator(REG, [Broken()], app_data=probe).run([NodeSpec("work", id="a")])
    assert probe.attempts == {}


async def test_emitted_custom_events_reach_later_hooks_and_readers_in_order() -> None:
    class Announcer(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            if isinstance(event, NodeCompleted):
                return EmitEvent(CustomEvent("done", {"node": event.node.node}))
            return None

    recorder = RecordingHook()
    async with Coordinator(REG, [Announcer(), recorder]).open_run(
        [NodeSpec("noop", id="a")]
    ) as run:
        seen = [event async for event in run.events()]
    assert seen == recorder.events
    completed = next(i for i, e in enumerate(seen) if isinstance(e, NodeCompleted))
    assert seen[completed + 1] == CustomEvent("done", {"node": "a"})


async def test_set_node_inputs_changes_a_waiting_node(autojump_clock: Any) -> None:
    specs = [
        NodeSpec("work", id="first", inputs={"delay": 5}),
        NodeSpec("work", id="second", deps=["first"], inputs={"delay": 1}),
    ]
    probe = Probe()
    async with Coordinator(REG, app_data=probe).open_run(specs) as run:
        await run.submit(SetNodeInputs("second", {"delay": 100}))
        assert run.graph.spec("second").inputs == {"delay": 100}
    record = run.report().nodes["second"]
    assert record.finished_at - record.started_at == pytest.approx(100)


async def test_body_exceptions_cancel_the_run_and_propagate_unwrapped(autojump_clock: Any) -> None:
    specs = [NodeSpec("work", id="long", inputs={"delay": 1000})]
    with pytest.raises(ZeroDivisionError):  # noqa: PT012 - it must escape the whole block
        async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
            await trio.sleep(1)
            1 / 0  # noqa: B018
    assert run.report().nodes["long"].status is NodeStatus.CANCELLED
    assert trio.current_time() == pytest.approx(1)


async def test_run_cancel_ends_the_run_promptly_with_a_report(autojump_clock: Any) -> None:
    specs = [
        NodeSpec("work", id="long", inputs={"delay": 1000}),
        NodeSpec("work", id="after", deps=["long"]),
        NodeSpec("work", id="quick"),
    ]
    async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
        await trio.sleep(3)
        run.cancel()
    report = await run.wait()
    assert trio.current_time() == pytest.approx(3)
    assert not report.success and report.error == "run was cancelled"
    statuses = {n: r.status for n, r in report.nodes.items()}
    assert statuses == {
        "long": NodeStatus.CANCELLED,
        "after": NodeStatus.CANCELLED,
        "quick": NodeStatus.SUCCEEDED,
    }


async def test_cancelling_the_enclosing_scope_leaves_no_task_behind(autojump_clock: Any) -> None:
    registry = ActionRegistry()
    alive: set[str] = set()

    @registry.action()
    async def sticky(ctx: NodeCtx) -> None:
        alive.add(ctx.node_id)
        try:
            await trio.sleep_forever()
        finally:
            alive.discard(ctx.node_id)

    holder: dict[str, Any] = {}
    with trio.move_on_after(5):
        async with Coordinator(registry, max_parallel=3).open_run(
            [NodeSpec("sticky", id=f"s{i}") for i in range(5)]
        ) as run:
            holder["run"] = run
    assert trio.current_time() == pytest.approx(5)
    assert alive == set()
    report: RunReport = holder["run"].report()
    assert report.counts() == {NodeStatus.CANCELLED: 5}
    assert sum(r.attempts for r in report.nodes.values()) == 3  # three had started


async def test_fail_fast_cancels_the_run_at_the_first_final_failure(autojump_clock: Any) -> None:
    specs = [
        NodeSpec("work", id="bad", inputs={"delay": 1, "fail": 5}),
        NodeSpec("work", id="slow", inputs={"delay": 100}),
        NodeSpec("work", id="later", deps=["slow"]),
    ]
    report = await run_dag(specs, REG, on_failure="fail_fast", app_data=Probe())
    assert trio.current_time() == pytest.approx(1)
    assert {n: r.status for n, r in report.nodes.items()} == {
        "bad": NodeStatus.FAILED,
        "slow": NodeStatus.CANCELLED,
        "later": NodeStatus.CANCELLED,
    }
    assert report.error == "fail_fast: node 'bad' failed: RuntimeError: planned failure 1"


async def test_shutdown_lets_running_nodes_finish_within_grace(autojump_clock: Any) -> None:
    recorder = RecordingHook()
    specs = [
        NodeSpec("work", id="short", inputs={"delay": 2}),
        NodeSpec("work", id="long", inputs={"delay": 50}),
        NodeSpec("work", id="waiting", deps=["short"]),
    ]
    async with Coordinator(REG, [recorder], app_data=Probe()).open_run(specs) as run:
        await trio.sleep(1)
        await run.shutdown(grace=5)
        await run.shutdown(grace=5)  # twice is harmless
        with pytest.raises(ValueError, match="grace"):
            await run.shutdown(grace=-1)
    assert trio.current_time() == pytest.approx(6)  # the grace, not the action's end
    report = run.report()
    assert {n: r.status for n, r in report.nodes.items()} == {
        "short": NodeStatus.SUCCEEDED,
        "long": NodeStatus.CANCELLED,
        "waiting": NodeStatus.CANCELLED,
    }
    assert not report.success and recorder.completed == [False]


async def test_pause_holds_a_branch_while_the_rest_goes_on(autojump_clock: Any) -> None:
    recorder = RecordingHook()
    specs = [
        NodeSpec("work", id="root", inputs={"delay": 1}),
        NodeSpec("work", id="tool", deps=["root"], branch="main/tool", inputs={"delay": 1}),
        NodeSpec("work", id="other", deps=["root"], inputs={"delay": 3}),
    ]
    other_done = trio.Event()

    async def watch(ctx: HookContext, event: ExecutionEvent) -> None:
        if isinstance(event, NodeCompleted) and event.node.node == "other":
            other_done.set()

    coordinator = Coordinator(REG, [recorder, watch], app_data=Probe())
    async with coordinator.open_run(specs) as run:
        await run.submit(PauseBranch("main/tool", reason="needs approval"))
        await other_done.wait()
        assert run.graph.status("tool") is NodeStatus.READY
        assert run.graph.paused_branches == ("main/tool",)
        await trio.sleep(10)  # an approver takes their time; the run waits
        await run.submit(ResumeBranch("main/tool"))
    kinds = [type(e) for e in recorder.events]
    assert BranchPaused in kinds and RunIdle in kinds and BranchResumed in kinds
    assert kinds.index(RunIdle) < kinds.index(BranchResumed)
    tool = run.report().nodes["tool"]
    assert tool.status is NodeStatus.SUCCEEDED and tool.started_at >= run.report().started_at + 14


async def test_cancel_branch_stops_running_and_future_nodes(autojump_clock: Any) -> None:
    recorder = RecordingHook()
    specs = [
        NodeSpec("work", id="tool", branch="main/tool", inputs={"delay": 100}),
        NodeSpec("work", id="tool-next", deps=["tool"]),
        NodeSpec("work", id="join", deps=["main-work", "tool"]),
        NodeSpec("work", id="main-work", inputs={"delay": 1}),
    ]
    async with Coordinator(REG, [recorder], app_data=Probe()).open_run(specs) as run:
        await trio.sleep(2)
        await run.submit(CancelBranch("main/tool", reason="over budget"))
        await run.submit(AddNode(NodeSpec("work", id="late-tool", branch="main/tool/sub")))
    assert trio.current_time() == pytest.approx(2)
    statuses = {n: r.status for n, r in run.report().nodes.items()}
    assert statuses == {
        "tool": NodeStatus.CANCELLED,
        "tool-next": NodeStatus.CANCELLED,
        "join": NodeStatus.SKIPPED,
        "main-work": NodeStatus.SUCCEEDED,
        "late-tool": NodeStatus.CANCELLED,
    }
    assert BranchCancelled("main/tool", "over budget") in recorder.events
    cancelled = {e.node.node for e in recorder.events if isinstance(e, NodeCancelled)}
    assert cancelled == {"tool", "tool-next", "late-tool"}
    skipped = [e for e in recorder.events if isinstance(e, NodeSkipped)]
    assert [e.node.node for e in skipped] == ["join"]
    check_run(run.report(), recorder.events)


async def test_events_stream_closed_early_never_stalls_the_run() -> None:
    specs = [NodeSpec("noop", id=f"n{i}") for i in range(50)]
    async with Coordinator(REG, event_capacity=0).open_run(specs) as run:
        async with run.events() as stream:
            first = await stream.receive()
        assert isinstance(first, NodeAdded)
        dropped = run.events()
        del dropped  # abandoned without closing: dropped streams close themselves
    assert run.report().success
    late = [event async for event in run.events()]
    assert late == []


async def test_one_coordinator_serves_concurrent_runs_independently() -> None:
    coordinator = Coordinator(REG, app_data=Probe())
    reports: dict[str, RunReport] = {}

    async def one(name: str, count: int) -> None:
        specs = [NodeSpec("work", id=f"{name}{i}") for i in range(count)]
        reports[name] = await coordinator.run(specs, dag_name=name)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "x", 5)
        nursery.start_soon(one, "y", 7)
    assert set(reports["x"].nodes) == {f"x{i}" for i in range(5)}
    assert set(reports["y"].nodes) == {f"y{i}" for i in range(7)}
    assert reports["x"].run_id != reports["y"].run_id


async def test_statistics_and_live_report(autojump_clock: Any) -> None:
    specs = [NodeSpec("work", id=f"n{i}", inputs={"delay": 10}) for i in range(6)]
    async with Coordinator(REG, max_parallel=4, app_data=Probe()).open_run(specs) as run:
        await trio.sleep(1)
        stats = run.statistics()
        assert (stats.nodes, stats.running, stats.ready, stats.unfinished) == (6, 4, 2, 6)
        snapshot = run.report()
        assert not snapshot.success and snapshot.finished_at is None
        assert run.graph.counts() == {NodeStatus.RUNNING: 4, NodeStatus.READY: 2}
        assert not run.finished
    assert run.finished and run.report().success
