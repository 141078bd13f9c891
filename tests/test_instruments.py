"""Instruments: synchronous callbacks that tell the same story as the report."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from helpers import run_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNode,
    Attempt,
    BranchPaused,
    CancelBranch,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    Instrument,
    NodeCompleted,
    NodeSpec,
    NodeStatus,
    PauseBranch,
    RunReport,
)
from dagtrio.testing import dags


class Log(Instrument):
    """Every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def run_started(self, run_id: str, dag_name: str) -> None:
        self.calls.append(("run_started", run_id, dag_name))

    def run_finished(self, report: RunReport) -> None:
        self.calls.append(("run_finished", report))

    def attempt_started(self, attempt: Attempt) -> None:
        self.calls.append(("started", attempt))

    def attempt_finished(
        self, attempt: Attempt, status: NodeStatus, ended: str, error: str | None
    ) -> None:
        self.calls.append(("finished", attempt, status, ended, error))

    def attempt_retrying(self, attempt: Attempt, error: str, delay: float) -> None:
        self.calls.append(("retrying", attempt, error, delay))

    def command_applied(self, run_id: str, command: Any, source: str | None) -> None:
        self.calls.append(("applied", command, source))


def registry(fails: dict[str, int], sleeps: dict[str, float]) -> ActionRegistry:
    """``work`` fails its first ``fails[id]`` attempts and sleeps ``sleeps[id]`` each."""
    reg = ActionRegistry()

    @reg.action()
    async def work(ctx: Any) -> int:
        await trio.sleep(sleeps.get(ctx.node_id, 0.0))
        if ctx.attempt <= fails.get(ctx.node_id, 0):
            raise ValueError(f"{ctx.node_id} attempt {ctx.attempt}")
        return ctx.attempt

    return reg


def check_story(log: Log, report: RunReport) -> None:
    """What the instrument heard agrees with the report, attempt by attempt."""
    calls = log.calls
    assert calls[0] == ("run_started", report.run_id, report.dag_name)
    assert calls[-1] == ("run_finished", report)
    assert [c[0] for c in calls].count("run_started") == 1
    assert [c[0] for c in calls].count("run_finished") == 1
    running: dict[str, Attempt] = {}
    last: dict[str, tuple[Any, ...]] = {}
    numbers: dict[str, list[int]] = {}
    for i, call in enumerate(calls[1:-1], 1):
        kind = call[0]
        if kind == "started":
            attempt = call[1]
            assert attempt.node_id not in running, "two attempts of one node at once"
            assert attempt.run_id == report.run_id
            record = report.nodes[attempt.node_id]
            assert (attempt.action, attempt.branch) == (record.action, record.branch)
            running[attempt.node_id] = attempt
            numbers.setdefault(attempt.node_id, []).append(attempt.number)
        elif kind == "finished":
            attempt = call[1]
            assert running.pop(attempt.node_id) == attempt, "an end without its start"
            assert call[2] in (NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.CANCELLED)
            assert call[3] in ("finished", "killed", "abandoned")
            last[attempt.node_id] = call
        elif kind == "retrying":
            # Right after the failed attempt it follows.
            previous = calls[i - 1]
            assert previous[0] == "finished" and previous[1] == call[1]
            assert previous[2] is NodeStatus.FAILED
    assert not running, f"attempts that never ended: {running}"
    for node_id, record in report.nodes.items():
        assert numbers.get(node_id, []) == list(range(1, record.attempts + 1))
        if record.attempts:
            status = last[node_id][2]
            # A node whose last attempt failed may have been cancelled since, while it
            # waited for its retry or was held for a decision.
            allowed = {status, NodeStatus.CANCELLED} if status is NodeStatus.FAILED else {status}
            assert record.status in allowed, (node_id, status, record.status)


class Grow(EventHook):
    """Adds a child under each completed node it was told to grow."""

    def __init__(self, grow: set[str]) -> None:
        self.grow = grow

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> list[AddNode]:
        if isinstance(event, NodeCompleted) and event.node.node in self.grow:
            parent = event.node.node
            return [AddNode(NodeSpec("work", id=f"{parent}.child", deps=[parent]))]
        return []


@given(
    specs=dags(action="work", max_nodes=12),
    data=st.data(),
    max_parallel=st.integers(1, 4),
    on_failure=st.sampled_from(["skip", "fail_fast", "hold"]),
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_an_instrument_hears_every_attempt_the_report_counts(
    specs: list[NodeSpec], data: st.DataObject, max_parallel: int, on_failure: str
) -> None:
    ids = [spec.id for spec in specs]
    assert all(isinstance(i, str) for i in ids)
    tries = {i: data.draw(st.integers(1, 3), label=f"tries {i}") for i in ids}
    fails = {i: data.draw(st.integers(0, 3), label=f"fails {i}") for i in ids}
    sleeps = {i: data.draw(st.sampled_from([0.0, 0.5, 2.0]), label=f"sleep {i}") for i in ids}
    grow = set(data.draw(st.lists(st.sampled_from(ids), unique=True, max_size=3), label="grow"))
    specs = [
        NodeSpec("work", id=s.id, deps=s.deps, try_count=tries[str(s.id)], retry_delay=1.0)
        for s in specs
    ]
    log = Log()
    coordinator = Coordinator(
        registry(fails, sleeps),
        [Grow(grow)],
        max_parallel=max_parallel,
        on_failure=on_failure,  # type: ignore[arg-type]
        instruments=[log],
    )

    async def main() -> RunReport:
        async with coordinator.open_run(specs) as run:
            if on_failure == "hold":
                # Held failures wait for a decision: end the run once it is at rest.
                async for event in run.events():
                    if type(event).__name__ == "RunIdle":
                        run.cancel()
        return run.report()

    report = run_mock(main)
    check_story(log, report)
    applied = [c for c in log.calls if c[0] == "applied"]
    assert all(c[2] == "Grow" for c in applied)
    assert {c[1].spec.id for c in applied} == {i for i in report.nodes if i.endswith(".child")}


def test_retries_timeouts_and_endings_are_told() -> None:
    reg = ActionRegistry()

    @reg.action()
    async def slow(ctx: Any) -> None:
        await trio.sleep(10)

    @reg.action()
    def blocking(ctx: Any) -> None:  # a worker thread: cannot be stopped
        import time

        time.sleep(0.2)

    log = Log()
    specs = [
        NodeSpec("slow", id="s", timeout=1.0, try_count=2, retry_delay=0.5),
        NodeSpec("blocking", id="b", timeout=0.05),
    ]

    async def main() -> RunReport:
        return await Coordinator(reg, instruments=[log]).run(specs)

    report = trio.run(main)
    check_story(log, report)
    ends = {(c[1].node_id, c[1].number): c for c in log.calls if c[0] == "finished"}
    # Cancelled in its Trio task, the work is over: "finished".
    assert ends[("s", 1)][2:4] == (NodeStatus.FAILED, "finished")
    assert "timed out" in ends[("s", 1)][4]
    assert ends[("b", 1)][2:4] == (NodeStatus.FAILED, "abandoned")
    (retry,) = [c for c in log.calls if c[0] == "retrying"]
    assert retry[1].node_id == "s" and retry[3] == 0.5


def test_a_run_cancelled_from_outside_ends_its_running_attempts() -> None:
    reg = registry({}, {"a": 100.0, "b": 100.0})
    log = Log()

    async def main() -> RunReport:
        async with Coordinator(reg, instruments=[log]).open_run(
            [NodeSpec("work", id="a"), NodeSpec("work", id="b", branch="side")]
        ) as run:
            await trio.sleep(1)
            run.cancel()
        return run.report()

    report = run_mock(main)
    check_story(log, report)
    ends = [c for c in log.calls if c[0] == "finished"]
    assert {(c[1].node_id, c[2]) for c in ends} == {
        ("a", NodeStatus.CANCELLED),
        ("b", NodeStatus.CANCELLED),
    }


def test_commands_are_told_with_their_source() -> None:
    reg = registry({}, {"a": 5.0, "b": 5.0})
    log = Log()

    class Pause(EventHook):
        async def on_start(self, ctx: HookContext) -> list[PauseBranch]:
            return [PauseBranch("later")]

    async def main() -> RunReport:
        async with Coordinator(reg, [Pause()], instruments=[log]).open_run(
            [NodeSpec("work", id="a"), NodeSpec("work", id="b", branch="later")]
        ) as run:
            async for event in run.events():
                if isinstance(event, BranchPaused):
                    break  # on_start's command is in: now cancel what it paused
            await run.submit(CancelBranch("later", reason="not needed"))
            with pytest.raises(Exception, match="rejected"):
                await run.submit(PauseBranch("main/x/../"))
        return run.report()

    report = run_mock(main)
    applied = [(type(c[1]).__name__, c[2]) for c in log.calls if c[0] == "applied"]
    assert applied == [("PauseBranch", "Pause"), ("CancelBranch", None)]
    assert report.nodes["b"].status is NodeStatus.CANCELLED


def test_an_instrument_that_raises_is_logged_and_detached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Instrument):
        calls = 0

        def attempt_started(self, attempt: Attempt) -> None:
            Broken.calls += 1
            raise RuntimeError("no room on the dashboard")

    log = Log()
    reg = registry({}, {})
    specs = [NodeSpec("work", id=f"n{i}") for i in range(5)]

    async def main() -> RunReport:
        return await Coordinator(reg, instruments=[Broken(), log]).run(specs)

    with caplog.at_level(logging.ERROR, logger="dagtrio"):
        report = run_mock(main)
    assert report.success
    assert Broken.calls == 1  # detached at its first failure
    check_story(log, report)  # the others hear everything
    (record,) = [r for r in caplog.records if "instrument" in r.getMessage()]
    assert "Broken" in record.getMessage() and "attempt_started" in record.getMessage()
    assert record.exc_info is not None and "dashboard" in str(record.exc_info[1])
    assert record.__dict__["dagtrio_run"] == report.run_id


@pytest.mark.parametrize(
    ("instruments", "message"),
    [
        ([object()], "instruments must be Instrument objects.*got object"),
        (Instrument(), "a list of Instrument objects, not one"),
    ],
)
def test_bad_instruments_are_refused(instruments: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Coordinator(registry({}, {}), instruments=instruments)


def test_a_run_without_instruments_builds_no_events_for_them() -> None:
    # Zero cost when none is installed: the hot path's events are not even built.
    reg = registry({}, {})
    seen: list[bool] = []

    async def main() -> None:
        async with Coordinator(reg).open_run([NodeSpec("work", id="a")]) as run:
            seen.append(run._state.listening)
        async with Coordinator(reg, instruments=[Log()]).open_run(
            [NodeSpec("work", id="a")]
        ) as run:
            seen.append(run._state.listening)

    run_mock(main)
    assert seen == [False, True]
