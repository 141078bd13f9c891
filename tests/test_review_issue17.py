"""Fixes from the fresh-eyes review of issue 16 (third session) and 17: each failed before."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from helpers import run_mock

from dagtrio import (
    ActionRegistry,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    Instrument,
    NodeCompleted,
    NodeSpec,
    NodeStarted,
    NodeStatus,
)


def _reg() -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def work(ctx: Any) -> int:
        await trio.sleep(ctx.inputs.get("delay", 1.0))
        return 1

    return reg


class PassThrough(EventHook):
    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
        return None


@pytest.mark.parametrize("capacity", [0, 1, 64])
def test_a_reader_subscribing_after_direct_acks_sees_every_later_event(capacity: int) -> None:
    # A chain: with one hook and no reader, the last stage acknowledges batches itself,
    # so the tail never counts them. A reader subscribing later starts at the run's
    # pipeline position; the tail, whose own position lags, must not skip its events.
    specs = [NodeSpec("work", id="n0")] + [
        NodeSpec("work", id=f"n{i}", deps=[f"n{i - 1}"]) for i in range(1, 20)
    ]
    seen: list[str] = []

    async def main() -> None:
        async with Coordinator(_reg(), [PassThrough()], event_capacity=capacity).open_run(
            specs
        ) as run:
            await trio.sleep(10.5)  # n0..n9 are done, n10 runs
            async for event in run.events():
                if isinstance(event, (NodeStarted, NodeCompleted)):
                    seen.append(f"{type(event).__name__}:{event.node.node}")

    run_mock(main)
    assert "NodeCompleted:n10" in seen
    assert "NodeCompleted:n19" in seen


def test_a_bulk_insert_leaves_the_applications_young_garbage_young() -> None:
    # freeze()+unfreeze() moves *every* tracked object to the oldest generation, the
    # application's (and other threads') uncollected garbage included: cycles holding
    # files, sockets or big buffers then wait for a full collection, which CPython
    # defers (and unfreeze does not even count them towards one).
    import gc
    import weakref

    from dagtrio._state.state import BULK

    class Cycle:
        pass

    def garbage() -> weakref.ref[Cycle]:
        obj = Cycle()
        obj.me = obj  # type: ignore[attr-defined]
        return weakref.ref(obj)

    reg = ActionRegistry()

    @reg.action()
    async def noop(ctx: Any) -> None:
        await trio.lowlevel.checkpoint()

    specs = [NodeSpec("noop", id=f"n{i}") for i in range(BULK)]
    gc.collect()
    threshold = gc.get_threshold()
    gc.set_threshold(10_000_000, 10, 10)  # no automatic collection in between
    try:
        refs = [garbage() for _ in range(100)]
        report = trio.run(Coordinator(reg).run, specs)
        assert report.success
        gc.collect(1)  # a young collection, as the interpreter makes them all the time
        assert sum(r() is not None for r in refs) == 0
    finally:
        gc.set_threshold(*threshold)
        gc.collect()


class _Interrupting(Instrument):
    """Raises a BaseException (Ctrl-C lands in whatever code runs) in one method."""

    def __init__(self, method: str) -> None:
        self.method = method

    def attempt_started(self, attempt: Any) -> None:
        if self.method == "attempt_started":
            raise KeyboardInterrupt

    def attempt_finished(self, *args: Any) -> None:
        if self.method == "attempt_finished":
            raise KeyboardInterrupt


class _Log(Instrument):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def attempt_started(self, attempt: Any) -> None:
        self.calls.append(("started", attempt))

    def attempt_finished(self, attempt: Any, status: NodeStatus, ended: str, error: Any) -> None:
        self.calls.append(("finished", attempt))

    def run_finished(self, report: Any) -> None:
        self.calls.append(("run_finished", None))


@pytest.mark.parametrize("method", ["attempt_started", "attempt_finished"])
def test_another_instruments_base_exception_leaves_attempts_paired(method: str) -> None:
    # A KeyboardInterrupt (or SystemExit) from one instrument rightly ends the run, but
    # the feed popped/opened the attempt before calling anyone: the instruments after it
    # then hear an attempt start with no end (a span never closed), or an end with no
    # start (the teardown's catch-up tells them of an attempt they never heard of).
    log = _Log()

    async def main() -> None:
        await Coordinator(_reg(), instruments=[_Interrupting(method), log]).run(
            [NodeSpec("work", id="a")]
        )

    with pytest.raises(KeyboardInterrupt):
        run_mock(main)
    kinds = [kind for kind, _ in log.calls]
    assert kinds[-1] == "run_finished"
    assert kinds.count("started") == kinds.count("finished"), log.calls
