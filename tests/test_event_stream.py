"""`run.events()`'s stream: events that wait are handed out without a yield each, but
the reader still yields often enough for the rest of the program, and sees
cancellation."""

from __future__ import annotations

import trio
import trio.testing
from helpers import run_mock

from dagtrio import (
    ActionRegistry,
    Coordinator,
    CustomEvent,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    RunReport,
)
from dagtrio._hooks.pipeline import Pipe
from dagtrio._hooks.stream import RUN, EventStream
from dagtrio.bench.runners import RUNNERS
from dagtrio.bench.workload import Workload


def filled(count: int) -> tuple[EventStream, Pipe]:
    pipe = Pipe(count)
    for i in range(count):
        assert pipe.put_nowait(CustomEvent("e", i))
    return EventStream(pipe), pipe


def test_queued_events_come_without_a_yield_each_but_never_more_than_RUN_apart() -> None:
    async def main() -> list[int]:
        stream, send = filled(300)
        send.close()
        turns = [0]
        seen: list[int] = []

        async def ticker() -> None:
            while True:
                turns[0] += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            async for _ in stream:
                seen.append(turns[0])
            nursery.cancel_scope.cancel()
        return seen

    seen = trio.run(main)
    assert len(seen) == 300
    # The reader yields once per RUN + 1 events; Trio may resume it before the other
    # task in the same batch, so the other task has run within two such spans...
    span = 2 * (64 + 1)  # the docs promise a yield at least every 64 events
    assert RUN <= 64
    assert all(seen[i + span] > seen[i] for i in range(len(seen) - span))
    # ...and not once per event, which is what reading cost before.
    assert seen[-1] - seen[0] < len(seen) // 8


def test_a_cancelled_reader_stops_within_RUN_events() -> None:
    async def main() -> int:
        stream, _send = filled(500)
        count = 0
        with trio.CancelScope() as scope:
            scope.cancel()
            async for _ in stream:
                count += 1
        return count

    assert trio.run(main) <= 64


def test_a_reader_sees_every_completion_at_capacity_0_and_1() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def noop(ctx: NodeCtx) -> None:
        await trio.sleep(0.001 * (hash(ctx.node_id) % 3))

    for capacity in (0, 1, 5):

        async def main(capacity: int = capacity) -> tuple[list[str], RunReport]:
            completed: list[str] = []
            specs = [NodeSpec("noop", id=f"n{i}") for i in range(40)]
            coordinator = Coordinator(registry, event_capacity=capacity, max_parallel=3)
            async with coordinator.open_run(specs) as run:

                async def read() -> None:
                    async for event in run.events():
                        if isinstance(event, NodeCompleted):
                            completed.append(event.node.node)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read)
            return completed, run.report()

        completed, report = run_mock(main)
        assert report.success
        assert sorted(completed) == sorted(report.nodes)


def test_the_bench_checks_that_every_reader_saw_every_event() -> None:
    workload = Workload(shape="layered", nodes=300, width=10, readers=2)
    trial = RUNNERS["dagtrio"].prepare(workload, workload.graph())
    trial.check()
    assert trial.run() > 0
