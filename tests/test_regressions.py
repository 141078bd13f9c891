"""One test per bug found in review, named for the behaviour it pins."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from helpers import Probe, run_mock, work_registry

import dagtrio
from dagtrio import (
    ActionRegistry,
    AddNode,
    AddNodes,
    Coordinator,
    CustomEvent,
    EmitEvent,
    EventHook,
    ExecutionEvent,
    HookContext,
    HookFailed,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    RunReport,
    run_dag,
)
from dagtrio.testing import RecordingHook

REG = work_registry()


async def test_a_hook_that_raises_on_its_own_hook_failed_does_not_loop_forever() -> None:
    class AlwaysBroken(EventHook):
        calls = 0

        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            self.calls += 1
            raise RuntimeError("log sink is down")

    recorder, broken = RecordingHook(), AlwaysBroken()
    with trio.fail_after(5):
        report = await Coordinator(REG, [broken, recorder], hook_errors="isolate").run(
            [NodeSpec("noop", id="a")]
        )
    assert report.success
    failures = [e for e in recorder.events if isinstance(e, HookFailed)]
    others = [e for e in recorder.events if not isinstance(e, HookFailed)]
    assert len(failures) == len(others) == 3  # one per real event, none for echoes


def test_a_hook_class_instead_of_an_instance_is_refused_up_front() -> None:
    with pytest.raises(TypeError, match="instance, not the class RecordingHook"):
        Coordinator(REG, [RecordingHook])  # type: ignore[list-item]


@pytest.mark.parametrize("command_capacity", [0, 1])
@pytest.mark.parametrize("hooks", [0, 1])
def test_an_empty_graph_ends_for_every_capacity(command_capacity: int, hooks: int) -> None:
    async def main() -> RunReport:
        coordinator = Coordinator(REG, [RecordingHook()] * hooks, command_capacity=command_capacity)
        return await coordinator.run([])

    report = run_mock(main)
    assert report.success and report.nodes == {}


def test_a_body_reader_that_stopped_reading_does_not_hang_the_run() -> None:
    async def main() -> RunReport:
        specs = [NodeSpec("noop", id=f"n{i}") for i in range(20)]
        async with Coordinator(REG, event_capacity=1).open_run(specs) as run:
            events = run.events()
            async for _ in events:
                break
        # Still referenced; what it held can still be read, and then it ends.
        assert len([e async for e in events]) <= 1
        return await run.wait()

    assert run_mock(main).success


def test_a_reader_that_submits_from_its_loop_is_never_held_back() -> None:
    """The reader is what the pipeline waits on; holding its submit for backpressure
    would be a cycle. Capacity 1 makes any such cycle bite at once."""

    async def main() -> RunReport:
        async with Coordinator(REG, event_capacity=1, command_capacity=0).open_run(
            [NodeSpec("noop", id="c0")]
        ) as run:
            async for event in run.events():
                if isinstance(event, NodeCompleted):
                    index = int(event.node.node[1:])
                    if index < 30:
                        next_id = f"c{index + 1}"
                        await run.submit(
                            AddNode(NodeSpec("noop", id=next_id, deps=[event.node.node]))
                        )
                        await run.submit(EmitEvent(CustomEvent("planned", next_id)))
        return await run.wait()

    report = run_mock(main)
    assert report.success and len(report.nodes) == 31


def test_no_node_starts_after_run_cancel() -> None:
    """The completion that readies 'b' and cancel() land at the same virtual instant;
    whatever order Trio picks, no attempt may begin once cancel() has been called."""
    for _ in range(30):

        async def main() -> None:
            specs = [
                NodeSpec("work", id="a", inputs={"delay": 1}),
                NodeSpec("work", id="b", deps=["a"]),
                NodeSpec("work", id="c", deps=["b"]),
            ]
            async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
                await trio.sleep(1)
                started = {n: run.graph.record(n).attempts for n in run.graph}
                run.cancel()
            final = {n: r.attempts for n, r in run.report().nodes.items()}
            assert final == started

        run_mock(main)


def test_no_node_starts_after_a_hook_failed_the_run() -> None:
    class FailOnStart(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            if isinstance(event, NodeStarted):
                raise RuntimeError("stop")

    async def main() -> None:
        specs = [
            NodeSpec("work", id="a", inputs={"delay": 1}),
            NodeSpec("work", id="b", deps=["a"]),
        ]
        coordinator = Coordinator(REG, [FailOnStart()], app_data=Probe())
        with pytest.raises(RuntimeError, match="stop"):
            async with coordinator.open_run(specs) as run:
                pass
        assert {n: (r.status, r.attempts) for n, r in run.report().nodes.items()} == {
            "a": (NodeStatus.CANCELLED, 1),
            "b": (NodeStatus.CANCELLED, 0),
        }

    run_mock(main)


async def test_cancelling_the_enclosing_scope_is_not_a_success(autojump_clock: Any) -> None:
    recorder = RecordingHook(latency=5)
    holder: dict[str, Any] = {}
    with trio.move_on_after(1):
        async with Coordinator(REG, [recorder]).open_run([NodeSpec("noop", id="a")]) as run:
            holder["run"] = run
    report = holder["run"].report()
    assert not report.success and report.error == "run was cancelled"
    assert recorder.completed == [False]


async def test_every_hook_gets_on_complete_even_if_an_earlier_one_is_cancelled(
    autojump_clock: Any,
) -> None:
    calls: list[str] = []

    class Slow(EventHook):
        async def on_complete(self, ctx: HookContext, success: bool) -> None:
            calls.append("slow:start")
            await trio.sleep(100)
            calls.append("slow:end")

    class Cleanup(EventHook):
        async def on_complete(self, ctx: HookContext, success: bool) -> None:
            calls.append("cleanup")

    with trio.move_on_after(1):
        await Coordinator(REG, [Slow(), Cleanup()]).run([NodeSpec("noop", id="a")])
    assert calls == ["slow:start", "cleanup"]


async def test_on_complete_failure_shows_in_the_report() -> None:
    class Broken(EventHook):
        async def on_complete(self, ctx: HookContext, success: bool) -> None:
            raise OSError("could not write summary")

    with pytest.raises(OSError, match="summary"):
        async with Coordinator(REG, [Broken()]).open_run([NodeSpec("noop", id="a")]) as run:
            pass
    report = run.report()
    assert not report.success
    assert report.error == "hook Broken raised in on_complete: OSError: could not write summary"


async def test_the_report_is_final_when_the_event_stream_ends(autojump_clock: Any) -> None:
    specs = [NodeSpec("work", id="a", inputs={"delay": 5}), NodeSpec("work", id="b")]
    async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
        stream = run.events()
        await run.shutdown(grace=1)
        async for _ in stream:
            pass
        report = run.report()
        assert report.finished_at is not None
        assert not report.success and report.error == "shutdown requested"
    assert run.report() is report


async def test_shutdown_is_in_force_when_it_returns(autojump_clock: Any) -> None:
    specs = [NodeSpec("work", id="a", inputs={"delay": 5}), NodeSpec("work", id="b", deps=["a"])]
    async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
        await trio.sleep(1)
        await run.shutdown(grace=10)
        assert run.graph.status("b") is NodeStatus.CANCELLED
        assert run.graph.status("a") is NodeStatus.RUNNING
        await run.shutdown(grace=1)  # a second call may shorten the grace
        await run.shutdown(grace=100)  # but never lengthen it
    assert trio.current_time() == pytest.approx(2)
    assert run.report().nodes["a"].status is NodeStatus.CANCELLED


async def test_huge_try_counts_do_not_overflow_the_backoff(autojump_clock: Any) -> None:
    specs = [
        NodeSpec("work", id="zero", inputs={"fail": 5000}, try_count=2000),
        NodeSpec("work", id="backoff", inputs={"fail": 5000}, try_count=1500, retry_delay=5e-324),
    ]
    report = await Coordinator(REG, app_data=Probe()).run(specs[:1])
    assert report.nodes["zero"].attempts == 2000
    # Past ~1025 attempts an int power of two used to overflow; here the delay
    # saturates to waiting forever instead of crashing the run.
    async with Coordinator(REG, app_data=Probe()).open_run(specs[1:]) as run:
        await trio.sleep(10)
        assert run.graph.record("backoff").attempts > 1030
        run.cancel()


async def test_auto_ids_avoid_explicit_ids_later_in_the_same_batch() -> None:
    report = await run_dag([NodeSpec("noop"), NodeSpec("noop", id="noop-1")], REG)
    assert set(report.nodes) == {"noop-1", "noop-2"}
    async with Coordinator(REG).open_run([NodeSpec("noop", id="x")]) as run:
        await run.submit(AddNodes([NodeSpec("noop"), NodeSpec("noop", id="noop-1")]))
    assert set(run.report().nodes) == {"x", "noop-1", "noop-2"}


async def test_a_late_reader_sees_nothing_from_before_it_subscribed(autojump_clock: Any) -> None:
    slow = RecordingHook(latency=1)
    async with Coordinator(REG, [slow]).open_run([NodeSpec("noop", id="a")]) as run:
        await trio.sleep(0.5)  # 'a' has completed; its events are still in the hook
        assert run.graph.status("a") is NodeStatus.SUCCEEDED
        late = [event async for event in run.events()]
    assert late == []


async def test_statistics_count_only_live_queue_entries(autojump_clock: Any) -> None:
    specs = [NodeSpec("work", id=f"n{i}", branch="main/x", inputs={"delay": 9}) for i in range(6)]
    async with Coordinator(REG, max_parallel=1, app_data=Probe()).open_run(specs) as run:
        await trio.sleep(1)
        await run.submit(AddNode(NodeSpec("work", id="keep", inputs={"delay": 50})))
        from dagtrio import CancelBranch

        await run.submit(CancelBranch("main/x"))
        stats = run.statistics()
        assert (stats.ready, stats.unfinished) == (1, 1)


@pytest.mark.parametrize("event_capacity", [0, 1, 2])
def test_opening_a_stream_then_submitting_before_reading_does_not_deadlock(
    event_capacity: int,
) -> None:
    async def main() -> RunReport:
        specs = [NodeSpec("noop", id=f"n{i}") for i in range(20)]
        async with Coordinator(REG, event_capacity=event_capacity).open_run(specs) as run:
            events = run.events()
            await run.submit(AddNode(NodeSpec("noop", id="extra")))
            await run.submit(EmitEvent(CustomEvent("hello")))
            seen = [event async for event in events]
        assert CustomEvent("hello") in seen
        return await run.wait()

    assert run_mock(main).success


def test_a_hook_that_submits_from_child_tasks_does_not_deadlock() -> None:
    holder: dict[str, Any] = {}

    class Delegating(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            if isinstance(event, NodeCompleted) and "." not in event.node.node:
                async with trio.open_nursery() as nursery:
                    for k in range(3):
                        spec = NodeSpec("noop", id=f"{event.node.node}.{k}")
                        nursery.start_soon(holder["run"].submit, AddNode(spec))

    async def main() -> RunReport:
        specs = [NodeSpec("noop", id=f"n{i}") for i in range(5)]
        coordinator = Coordinator(REG, [Delegating()], event_capacity=1, command_capacity=0)
        async with coordinator.open_run(specs) as run:
            holder["run"] = run
        return await run.wait()

    report = run_mock(main)
    assert report.success and len(report.nodes) == 20


def test_a_reader_in_the_body_ends_even_if_the_pipeline_never_started() -> None:
    class BrokenStart(EventHook):
        async def on_start(self, ctx: HookContext) -> None:
            raise RuntimeError("no config")

    async def main() -> None:
        seen: list[ExecutionEvent] = []
        with pytest.raises(RuntimeError, match="no config"):  # noqa: PT012 - the body reads
            async with Coordinator(REG, [BrokenStart()]).open_run([NodeSpec("noop")]) as run:
                # Ends with the run, or is cancelled with the body when the run fails.
                async for event in run.events():
                    seen.append(event)
        assert all(not isinstance(e, NodeStarted) for e in seen)

    run_mock(main)


def test_waiting_in_the_body_with_an_unread_stream_does_not_hang() -> None:
    async def main() -> RunReport:
        specs = [NodeSpec("noop", id=f"n{i}") for i in range(50)]
        async with Coordinator(REG, event_capacity=1).open_run(specs) as run:
            run.events()  # opened, never read
            stream = run.events()
            return await run.wait()
        del stream

    assert run_mock(main).success


async def test_a_cancelled_run_reports_empty_queues(autojump_clock: Any) -> None:
    slow = RecordingHook(latency=10)
    specs = [NodeSpec("work", id=f"n{i}", inputs={"delay": 100}) for i in range(3)]
    async with Coordinator(REG, [slow], app_data=Probe()).open_run(specs) as run:
        await trio.sleep(1)
        run.cancel()
    stats = run.statistics()
    assert (stats.running, stats.delayed, stats.events_in_flight, stats.unfinished) == (
        0,
        0,
        0,
        0,
    )
    assert not run.idle


async def test_cancellation_reasons_mention_a_grace_only_when_there_was_one(
    autojump_clock: Any,
) -> None:
    specs = [NodeSpec("work", id="a", inputs={"delay": 100})]
    for grace, expected in [(0, "cancelled: shutdown requested"), (2, "(2s grace period over)")]:
        async with Coordinator(REG, app_data=Probe()).open_run(specs) as run:
            await trio.sleep(3)
            await run.shutdown(grace=grace)
        assert expected in (run.report().nodes["a"].error or "")


async def test_fail_fast_stops_running_work_even_during_a_graceful_shutdown(
    autojump_clock: Any,
) -> None:
    specs = [
        NodeSpec("work", id="bad", inputs={"delay": 2, "fail": 1}),
        NodeSpec("work", id="long", inputs={"delay": 1000}),
    ]
    coordinator = Coordinator(REG, on_failure="fail_fast", app_data=Probe())
    async with coordinator.open_run(specs) as run:
        await trio.sleep(1)
        await run.shutdown(grace=None)
    assert trio.current_time() == pytest.approx(2)
    assert run.report().nodes["long"].status is NodeStatus.CANCELLED


async def test_idle_is_false_once_a_paused_run_has_ended(autojump_clock: Any) -> None:
    from dagtrio import PauseBranch

    async with Coordinator(REG, app_data=Probe()).open_run(
        [NodeSpec("work", id="a", branch="main/x")]
    ) as run:
        await run.submit(PauseBranch("main/x"))
        await trio.sleep(5)
        assert run.idle
        await run.shutdown()
    assert not run.idle


async def test_a_finished_attempt_leaves_nothing_of_its_ctx_behind() -> None:
    # A branch's crew once kept the contexts of the first workers it started alive for
    # the whole run. A context holds upstream outputs, which can be large.
    import gc
    import weakref

    registry = ActionRegistry()
    seen: list[weakref.ref[NodeCtx]] = []
    alive_later: list[int] = []

    @registry.action()
    async def first(ctx: NodeCtx) -> bytes:
        seen.append(weakref.ref(ctx))
        await trio.lowlevel.checkpoint()
        return b"x" * 1000

    @registry.action()
    async def later(ctx: NodeCtx) -> None:
        await trio.lowlevel.checkpoint()
        alive_later.append(sum(ref() is not None for ref in seen))

    specs = [NodeSpec("first", id=f"f{i}") for i in range(5)]
    specs.append(NodeSpec("later", id="l", deps=[spec.id for spec in specs]))  # type: ignore[misc]
    gc.disable()  # freed by reference counting alone: nothing holds them, not even a cycle
    try:
        report = await Coordinator(registry).run(specs)
    finally:
        gc.enable()
    assert report.success
    assert len(seen) == 5
    assert alive_later == [0]


@pytest.mark.parametrize("app_disabled_gc", [False, True])
async def test_big_batches_leave_the_garbage_collector_as_they_found_it(
    app_disabled_gc: bool,
) -> None:
    # Batches of BULK specs or more are added with the collector paused; whether the
    # batch goes in, is rejected, or fails validation up front, the application's
    # setting must be back afterwards.
    import gc

    from dagtrio._state.state import BULK

    good = [NodeSpec("noop", id=f"g{i}") for i in range(BULK)]
    bad = [NodeSpec("noop", id=f"b{i}") for i in range(BULK)] + [
        NodeSpec("noop", id="x", deps=["missing"])
    ]
    seen: list[bool] = []

    class Grow(EventHook):
        async def on_start(self, ctx: HookContext) -> list[AddNodes]:
            return [AddNodes(bad), AddNodes([NodeSpec("noop", id=f"h{i}") for i in range(BULK)])]

        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            seen.append(gc.isenabled())

    if app_disabled_gc:
        gc.disable()
    try:
        with pytest.raises(dagtrio.InvalidGraphError, match=r"'x'.*'missing'"):
            await Coordinator(REG).run(bad)
        assert gc.isenabled() is not app_disabled_gc
        recorder = RecordingHook()
        report = await Coordinator(REG, [Grow(), recorder], app_data=Probe()).run(good)
        assert gc.isenabled() is not app_disabled_gc
    finally:
        gc.enable()
    assert report.success and len(report.nodes) == 2 * BULK
    assert set(seen) == {not app_disabled_gc}
    rejected = [e for e in recorder.events if type(e).__name__ == "CommandRejected"]
    assert len(rejected) == 1 and "missing" in rejected[0].reason  # type: ignore[attr-defined]


async def test_big_batches_leave_the_applications_frozen_objects_frozen() -> None:
    # After a big batch its objects are moved to the oldest generation with
    # freeze+unfreeze; an application that froze objects itself (a pre-fork server)
    # must find them still frozen, and otherwise nothing stays frozen.
    import gc

    from dagtrio._state.state import BULK

    specs = [NodeSpec("noop", id=f"n{i}") for i in range(BULK)]
    before = gc.get_freeze_count()  # not 0 if something in this process froze objects
    report = await Coordinator(REG).run(specs)
    assert report.success
    if before == 0:
        assert gc.get_freeze_count() == 0
    kept = [[i] for i in range(10)]  # tracked objects, frozen by the application

    def frozen() -> bool:
        # Frozen objects are in none of the collector's generations.
        tracked = {id(o) for o in gc.get_objects()}
        return not any(id(o) in tracked for o in kept)

    gc.freeze()
    try:
        assert frozen()
        report = await Coordinator(REG).run([NodeSpec("noop", id=f"m{i}") for i in range(BULK)])
        assert report.success and frozen()
    finally:
        gc.unfreeze()
    assert not frozen()
