"""Executors: where a node runs, what a cancelled attempt's work became, and refusals.

The built-in executors (``inline``, ``thread``) under a MockClock; the worker-process
executor in ``test_process_executor.py`` (real processes, real time).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
from helpers import run_mock

from dagtrio import (
    ActionRegistry,
    AddNode,
    CancelBranch,
    CommandRejected,
    CommandRejectedError,
    Coordinator,
    InvalidGraphError,
    NodeCancelled,
    NodeCtx,
    NodeFailed,
    NodeOutput,
    NodeRetrying,
    NodeSpec,
    NodeStatus,
    SqliteJournal,
)
from dagtrio.executors import Executor, PortableCtx, ThreadExecutor
from dagtrio.testing import RecordingHook, check_run


def _registry() -> tuple[ActionRegistry, threading.Event]:
    registry = ActionRegistry()
    release = threading.Event()

    @registry.action()
    async def sleepy(ctx: NodeCtx) -> str:
        await trio.sleep(ctx.inputs.get("seconds", 1000))
        return "slept"

    @registry.action()
    def blocking(ctx: NodeCtx) -> str:
        release.wait(30)
        return "unblocked"

    @registry.action()
    def sync_quick(ctx: NodeCtx) -> int:
        return threading.get_ident()

    @registry.action(executor="inline")
    def sync_inline(ctx: NodeCtx) -> int:
        return threading.get_ident()

    @registry.action(executor="thread")
    async def async_on_thread(ctx: NodeCtx) -> None:
        pass

    @registry.action(executor="nowhere")
    def lost(ctx: NodeCtx) -> None:
        pass

    return registry, release


def test_a_timed_out_thread_is_abandoned_and_an_inline_task_finished() -> None:
    registry, release = _registry()
    hook = RecordingHook()

    async def main() -> Any:
        try:
            return await Coordinator(registry, [hook]).run(
                [
                    NodeSpec("blocking", id="t", timeout=1, try_count=2),
                    NodeSpec("sleepy", id="i", timeout=1),
                ]
            )
        finally:
            release.set()

    report = run_mock(main)
    check_run(report, hook.events)
    retrying = [e for e in hook.events if isinstance(e, NodeRetrying)]
    failed = {e.node.node: e for e in hook.events if isinstance(e, NodeFailed)}
    assert [e.ended for e in retrying] == ["abandoned"]
    assert failed["t"].ended == "abandoned"
    assert failed["i"].ended == "finished"
    assert report.nodes["t"].ended == "abandoned"
    assert report.nodes["i"].ended == "finished"
    assert "abandoned (it may still be running)" in (report.nodes["t"].error or "")
    assert report.nodes["i"].error == "timed out after 1s (attempt 1)"


def test_a_cancelled_branch_says_what_became_of_each_running_attempt() -> None:
    registry, release = _registry()
    hook = RecordingHook()

    async def main() -> Any:
        coordinator = Coordinator(registry, [hook])
        specs = [
            NodeSpec("blocking", id="t", branch="main/b"),
            NodeSpec("sleepy", id="i", branch="main/b"),
            NodeSpec("sleepy", id="later", deps=["i"]),
        ]
        try:
            async with coordinator.open_run(specs) as run:
                while run.graph.status("t") is not NodeStatus.RUNNING:  # noqa: ASYNC110
                    await trio.sleep(0.1)
                await run.submit(CancelBranch("main/b"))
            return await run.wait()
        finally:
            release.set()

    report = run_mock(main)
    check_run(report, hook.events)
    cancelled = {e.node.node: e.ended for e in hook.events if isinstance(e, NodeCancelled)}
    assert cancelled == {"t": "abandoned", "i": "finished", "later": None}
    assert report.nodes["t"].ended == "abandoned"
    assert report.nodes["later"].ended is None


def test_a_succeeding_attempt_after_a_timeout_ends_none() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def slow_once(ctx: NodeCtx) -> int:
        if ctx.attempt == 1:
            await trio.sleep(10)
        return ctx.attempt

    report = run_mock(
        lambda: Coordinator(registry).run([NodeSpec("slow_once", id="n", timeout=1, try_count=2)])
    )
    assert report.nodes["n"].status is NodeStatus.SUCCEEDED
    assert report.nodes["n"].ended is None


def test_inline_runs_a_sync_function_in_the_trio_thread_and_thread_elsewhere() -> None:
    registry, _ = _registry()

    async def main() -> Any:
        return threading.get_ident(), await Coordinator(registry).run(
            [
                NodeSpec("sync_inline", id="in"),
                NodeSpec("sync_quick", id="th"),
                NodeSpec("sync_quick", id="forced", executor="inline"),
            ]
        )

    trio_thread, report = trio.run(main)  # a real thread: a MockClock would not wait
    assert report.nodes["in"].outputs == trio_thread
    assert report.nodes["forced"].outputs == trio_thread
    assert report.nodes["th"].outputs != trio_thread


def test_a_replaced_thread_executor_bounds_the_sync_actions() -> None:
    registry = ActionRegistry()
    lock = threading.Lock()
    running = [0]
    most = [0]

    @registry.action()
    def counted(ctx: NodeCtx) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.01)
        with lock:
            running[0] -= 1

    async def main() -> Any:
        coordinator = Coordinator(registry, executors={"thread": ThreadExecutor(max_workers=2)})
        return await coordinator.run([NodeSpec("counted") for _ in range(12)])

    report = trio.run(main)  # real threads, real time: a MockClock would not wait for them
    assert report.success
    assert most[0] == 2


def test_unknown_or_unfit_executors_are_refused_before_the_run_starts() -> None:
    registry, _ = _registry()
    coordinator = Coordinator(registry)

    async def attempt(spec: NodeSpec) -> str:
        with pytest.raises(InvalidGraphError) as caught:
            await coordinator.run([NodeSpec("sleepy", id="fine"), spec])
        return str(caught.value)

    message = trio.run(attempt, NodeSpec("sleepy", id="x", executor="gpu"))
    assert "node 'x'" in message and "executor 'gpu' is not known" in message
    assert "'inline', 'thread'" in message
    message = trio.run(attempt, NodeSpec("lost", id="y"))
    assert "node 'y'" in message and "executor 'nowhere' is not known" in message
    message = trio.run(attempt, NodeSpec("async_on_thread", id="z"))
    assert "node 'z'" in message and "async function" in message
    message = trio.run(attempt, NodeSpec("sleepy", id="w", executor="thread"))
    assert "executor='inline'" in message


def test_an_unknown_executor_in_growth_is_a_rejected_command() -> None:
    registry, _ = _registry()
    hook = RecordingHook()

    async def main() -> Any:
        async with Coordinator(registry, [hook]).open_run(
            [NodeSpec("sleepy", id="a", inputs={"seconds": 1})]
        ) as run:
            with pytest.raises(CommandRejectedError, match="executor 'gpu' is not known"):
                await run.submit(AddNode(NodeSpec("sleepy", id="b", executor="gpu")))
        return await run.wait()

    report = run_mock(main)
    check_run(report, hook.events, rejected=1)
    [rejected] = [e for e in hook.events if isinstance(e, CommandRejected)]
    assert "executor 'gpu' is not known" in rejected.reason
    assert "b" not in report.nodes


def test_bad_executor_options_are_refused() -> None:
    registry = ActionRegistry()
    with pytest.raises(ValueError, match="'inline' is the node's own Trio task"):
        Coordinator(registry, executors={"inline": ThreadExecutor()})
    with pytest.raises(TypeError, match=r"executors\['gpu'\] must be an Executor"):
        Coordinator(registry, executors={"gpu": "cuda"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="executors must be a mapping"):
        Coordinator(registry, executors=["thread"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_workers must be an int >= 1"):
        ThreadExecutor(max_workers=0)
    with pytest.raises(TypeError, match="executor must be a non-empty string"):
        registry.action(executor="")(lambda ctx: None)
    with pytest.raises(Exception, match="executor must be a non-empty string or None"):
        NodeSpec("x", executor=3)  # type: ignore[arg-type]
    assert len(registry) == 0


class Recording(Executor):
    """A custom executor: runs in this process, with a portable context, and counts."""

    ending = "abandoned"

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0
        self.stops = 0
        self.contexts: list[Any] = []

    async def start(self) -> None:
        self.starts += 1

    async def stop(self) -> None:
        self.stops += 1

    async def run(self, fn: Any, ctx: Any) -> Any:
        self.contexts.append(ctx)
        await trio.lowlevel.checkpoint()
        return fn(ctx)


def test_a_custom_executor_lives_as_long_as_the_run_or_the_application_holds_it() -> None:
    registry = ActionRegistry()

    @registry.action(executor="mine")
    def double(ctx: Any) -> int:
        return 2 * ctx.inputs["x"] + sum(ctx.upstream.values())

    @registry.action(executor="mine")
    def peek(ctx: Any) -> Any:
        return ctx.cache

    @registry.action()
    async def unused(ctx: NodeCtx) -> None:
        pass

    executor = Recording()

    async def main() -> Any:
        coordinator = Coordinator(registry, executors={"mine": executor}, app_data="secret")
        idle = await coordinator.run([NodeSpec("unused")])
        assert idle.success and executor.starts == 0  # never needed, never started
        first = await coordinator.run(
            [
                NodeSpec("double", id="a", inputs={"x": 1}),
                NodeSpec("double", id="b", deps=["a"], inputs={"x": 2}),
            ]
        )
        assert (executor.starts, executor.stops) == (1, 1)
        async with executor:
            for _ in range(2):
                await coordinator.run([NodeSpec("double", inputs={"x": 3})])
            assert (executor.starts, executor.stops) == (2, 1)
        assert (executor.starts, executor.stops) == (2, 2)
        peeked = await coordinator.run([NodeSpec("peek", id="p")])
        return first, peeked

    first, peeked = run_mock(main)
    assert first.nodes["b"].outputs == 2 * 2 + 2
    ctx = executor.contexts[1]
    assert isinstance(ctx, PortableCtx)
    assert (ctx.node_id, ctx.executor, dict(ctx.upstream), ctx.attempt) == (
        "b",
        "mine",
        {"a": 2},
        1,
    )
    record = peeked.nodes["p"]
    assert record.status is NodeStatus.FAILED
    assert "ctx.cache is not available to node 'p'" in (record.error or "")
    assert "executor 'mine'" in (record.error or "")


def test_an_executor_that_fails_to_start_fails_the_node_and_the_run_goes_on() -> None:
    registry = ActionRegistry()

    class Broken(Recording):
        async def start(self) -> None:
            raise ConnectionError("no cluster at tcp://nowhere:8786")

    @registry.action(executor="broken")
    def remote(ctx: Any) -> None:
        pass

    @registry.action()
    async def local(ctx: NodeCtx) -> int:
        return 1

    report = run_mock(
        lambda: Coordinator(registry, executors={"broken": Broken()}).run(
            [NodeSpec("remote", id="r", try_count=2), NodeSpec("local", id="l")]
        )
    )
    assert report.nodes["l"].status is NodeStatus.SUCCEEDED
    assert report.nodes["r"].status is NodeStatus.FAILED
    assert report.nodes["r"].attempts == 2
    assert "no cluster at tcp://nowhere:8786" in (report.nodes["r"].error or "")


def test_endings_survive_the_journal(tmp_path: Any) -> None:
    registry, release = _registry()

    async def main() -> Any:
        journal = SqliteJournal(tmp_path / "j.db")
        try:
            report = await Coordinator(registry, journal=journal).run(
                [
                    NodeSpec("blocking", id="t", timeout=0.05),
                    NodeSpec("sleepy", id="i", timeout=0.05),
                ],
                run_id="r",
            )
        finally:
            release.set()
        return report, journal.report("r")

    # The journal writes from threads: on the real clock (a MockClock would jump).
    live, stored = trio.run(main)
    assert dict(stored.nodes) == dict(live.nodes)
    assert stored.nodes["t"].ended == "abandoned"
    assert stored.nodes["i"].ended == "finished"


def test_the_spec_executor_overrides_the_action_and_travels_in_the_journal(tmp_path: Any) -> None:
    registry = ActionRegistry()
    executor = Recording()

    @registry.action()
    def where(ctx: Any) -> str:
        # The run's own contexts are a NodeCtx subclass (see `LiveCtx`).
        return "NodeCtx" if isinstance(ctx, NodeCtx) else type(ctx).__name__

    async def main() -> Any:
        journal = SqliteJournal(tmp_path / "j.db")
        coordinator = Coordinator(registry, journal=journal, executors={"mine": executor})
        report = await coordinator.run(
            [NodeSpec("where", id="default"), NodeSpec("where", id="mine", executor="mine")],
            run_id="r",
        )
        return report, journal.stored_run("r")

    report, stored = trio.run(main)
    assert report.nodes["default"].outputs == "NodeCtx"
    assert report.nodes["mine"].outputs == "PortableCtx"
    assert '"executor": "mine"' in stored.records[0][2]["data"]


def test_node_output_from_an_executor_is_kept_as_it_is() -> None:
    registry = ActionRegistry()

    @registry.action(executor="mine")
    def explicit(ctx: Any) -> NodeOutput:
        return NodeOutput.failed("said no")

    report = run_mock(
        lambda: Coordinator(registry, executors={"mine": Recording()}).run(
            [NodeSpec("explicit", id="e")]
        )
    )
    assert report.nodes["e"].status is NodeStatus.FAILED
    assert report.nodes["e"].error == "said no"


def test_an_executor_that_fails_to_stop_is_logged_and_the_report_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = ActionRegistry()

    class Sticky(Recording):
        async def stop(self) -> None:
            raise OSError("pool would not close")

    @registry.action(executor="sticky")
    def remote(ctx: Any) -> int:
        return 7

    report = run_mock(
        lambda: Coordinator(registry, executors={"sticky": Sticky()}).run(
            [NodeSpec("remote", id="r")]
        )
    )
    assert report.success and report.nodes["r"].outputs == 7
    assert "failed to stop: OSError: pool would not close" in caplog.text
