"""Progress from inside an action (DESIGN.md §4): ``await ctx.emit(payload)`` → `NodeProgress`."""

from __future__ import annotations

from typing import Any

import trio
from helpers import run_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    CancelBranch,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    NodeCompleted,
    NodeCtx,
    NodeFailed,
    NodeProgress,
    NodeRetrying,
    NodeSpec,
    NodeStarted,
)
from dagtrio.testing import RecordingHook, check_run, dags


def talking_registry(emitted: dict[tuple[str, int], list[Any]]) -> ActionRegistry:
    """``talk``: emits ``inputs['n']`` payloads, sleeping ``inputs['pause']`` between;
    fails its first ``inputs['fail']`` attempts (after emitting)."""
    registry = ActionRegistry()

    @registry.action()
    async def talk(ctx: NodeCtx) -> Any:
        said = emitted.setdefault((ctx.node_id, ctx.attempt), [])
        for i in range(ctx.inputs.get("n", 0)):
            payload = f"{ctx.node_id}:{ctx.attempt}:{i}"
            await ctx.emit(payload)
            said.append(payload)
            await trio.sleep(ctx.inputs.get("pause", 0))
        if ctx.attempt <= ctx.inputs.get("fail", 0):
            raise RuntimeError("planned")
        return len(said)

    return registry


class Slow(EventHook):
    def __init__(self, latency: float) -> None:
        self.latency = latency

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
        await trio.sleep(self.latency)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dags(action="talk", max_nodes=8),
    st.data(),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(1, 3),
    st.sampled_from([0, 0.5, 2]),
    st.sampled_from([0, 1, 3]),
)
def test_progress_arrives_in_order_and_never_deadlocks(
    specs: list[NodeSpec],
    data: Any,
    event_capacity: int,
    command_capacity: int,
    max_parallel: int,
    hook_latency: float,
    reader_latency: float,
) -> None:
    """Actions emitting many times, slow hooks and a slow reader, capacities 0..3: the
    run ends; each attempt's progress comes between its start and its end, all of it,
    in the order it was emitted; the pipeline never holds more than it may."""
    import attrs

    specs = [
        attrs.evolve(
            spec,
            inputs={
                "n": data.draw(st.integers(0, 6), label=f"emits {spec.id}"),
                "pause": data.draw(st.sampled_from([0, 1]), label=f"pause {spec.id}"),
                "fail": data.draw(st.integers(0, 1), label=f"fails {spec.id}"),
            },
            try_count=2,
        )
        for spec in specs
    ]
    emitted: dict[tuple[str, int], list[Any]] = {}
    recorder = RecordingHook()
    seen: list[ExecutionEvent] = []
    peaks: list[int] = []

    async def main() -> Any:
        coordinator = Coordinator(
            talking_registry(emitted),
            [Slow(hook_latency), recorder],
            event_capacity=event_capacity,
            command_capacity=command_capacity,
            max_parallel=max_parallel,
        )
        async with coordinator.open_run(specs) as run:
            async for event in run.events():
                seen.append(event)
                peaks.append(run.statistics().events_in_flight)
                await trio.sleep(reader_latency)
        return run.report()

    report = run_mock(main)
    check_run(report, recorder.events)
    assert report.success
    assert seen == recorder.events  # the reader saw the run's one order too
    # Bounded: the emitters wait for room, they do not pile events up (the initial
    # NodeAdded events go in at once, and one change may announce a few events).
    assert max(peaks, default=0) <= len(specs) + max(1, event_capacity) + 2
    running: dict[str, int] = {}
    got: dict[tuple[str, int], list[Any]] = {}
    for event in recorder.events:
        if isinstance(event, NodeStarted):
            running[event.node.node] = event.attempt
        elif isinstance(event, NodeProgress):
            assert running.get(event.node.node) == event.attempt, f"{event} outside its attempt"
            got.setdefault((event.node.node, event.attempt), []).append(event.payload)
        elif isinstance(event, NodeCompleted | NodeFailed | NodeRetrying):
            running.pop(event.node.node, None)
    assert got == {key: said for key, said in emitted.items() if said}


def test_emit_slows_the_emitting_action_only() -> None:
    """A slow hook and a rendezvous pipeline: a chatty action waits for each of its
    events, while a quiet node beside it finishes on time."""

    async def main() -> None:
        emitted: dict[tuple[str, int], list[Any]] = {}
        recorder = RecordingHook()
        coordinator = Coordinator(talking_registry(emitted), [Slow(1), recorder], event_capacity=0)
        specs = [
            NodeSpec("talk", id="chatty", inputs={"n": 10}),
            NodeSpec("talk", id="quiet", inputs={"n": 0}),
        ]
        report = await coordinator.run(specs)
        chatty, quiet = report.nodes["chatty"], report.nodes["quiet"]
        assert chatty.duration is not None and quiet.duration is not None
        assert chatty.duration >= 8  # it waited for the hook, event by event
        assert quiet.duration == 0
        assert [e.payload for e in recorder.events if isinstance(e, NodeProgress)] == [
            f"chatty:1:{i}" for i in range(10)
        ]

    run_mock(main)


def test_progress_of_a_cancelled_attempt_stops_with_it() -> None:
    async def main() -> None:
        emitted: dict[tuple[str, int], list[Any]] = {}
        recorder = RecordingHook()
        coordinator = Coordinator(talking_registry(emitted), [Slow(5), recorder], event_capacity=0)
        spec = NodeSpec("talk", id="t", branch="b", inputs={"n": 100, "pause": 1})
        async with coordinator.open_run([spec]) as run:
            await trio.sleep(12)
            await run.submit(CancelBranch("b"))
        report = run.report()
        check_run(report, recorder.events)
        progress = [e for e in recorder.events if isinstance(e, NodeProgress)]
        assert 0 < len(progress) < 100
        assert recorder.events.index(progress[-1]) < len(recorder.events) - 1

    run_mock(main)


def test_emit_without_listeners_or_a_run_just_checkpoints() -> None:
    async def main() -> None:
        emitted: dict[tuple[str, int], list[Any]] = {}
        report = await Coordinator(talking_registry(emitted)).run(
            [NodeSpec("talk", id="t", inputs={"n": 1000})]
        )
        assert report.nodes["t"].outputs == 1000
        ctx = NodeCtx("dag", "n", "r", {}, {}, 1, {})
        await ctx.emit("nobody")  # a context made by hand, as in a unit test

    run_mock(main)


def test_a_sync_action_emits_from_its_thread() -> None:
    registry = ActionRegistry()

    @registry.action()
    def work(ctx: NodeCtx) -> int:
        for i in range(3):
            ctx.emit_from_thread(i)
        return 3

    async def main() -> None:
        recorder = RecordingHook()
        await Coordinator(registry, [recorder]).run([NodeSpec("work", id="w")])
        assert [e.payload for e in recorder.events if isinstance(e, NodeProgress)] == [0, 1, 2]

    trio.run(main)
