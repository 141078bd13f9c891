"""Regressions found by a fresh-eyes review of the steering features (issue 13).

Each test is one reproducer that failed before its fix.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from helpers import run_mock, wait_idle

from dagtrio import (
    ActionRegistry,
    AddNode,
    CommandRejectedError,
    CompleteNode,
    Coordinator,
    InvalidGraphError,
    NodeCtx,
    NodeFailed,
    NodeSpec,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RetryNode,
    SqliteJournal,
)
from dagtrio.cli import main as cli

S = NodeStatus


def registry(log: list[Any]) -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def step(ctx: NodeCtx) -> Any:
        log.append((ctx.node_id, ctx.attempt))
        await trio.sleep(ctx.inputs.get("t", 0.01))
        if ctx.inputs.get("fail_until", 0) >= ctx.attempt:
            raise RuntimeError(f"{ctx.node_id} failed")
        if ctx.inputs.get("broken"):
            raise RuntimeError(f"{ctx.node_id} is broken")
        return 1 + sum(v for v in ctx.upstream.values() if isinstance(v, int))

    @reg.action()
    async def fanin(ctx: NodeCtx) -> Any:
        log.append((ctx.node_id, dict(ctx.upstream)))
        await trio.lowlevel.checkpoint()
        if ctx.inputs.get("fail_until", 0) >= ctx.attempt:
            raise RuntimeError("fan-in failed")
        return sorted(k for k in ctx.cache if k.startswith("f"))

    return reg


def test_a_rerun_from_a_dep_of_a_deferred_node_in_another_branch(tmp_path: Path) -> None:
    """The deferred node, due in the replayed run, must wait for its dep again."""
    log: list[Any] = []

    async def main() -> None:
        coordinator = Coordinator(registry(log), journal=SqliteJournal(tmp_path / "j.db"))
        specs = [
            NodeSpec("step", id="x"),
            NodeSpec("fanin", id="d", deps=["x"], defer=True, branch="fan"),
        ]
        assert (await coordinator.run(specs, run_id="r")).success
        log.clear()
        report = await coordinator.resume("r", rerun_from=["x"])
        assert report.success
        assert log == [("x", 2), ("d", {"x": 1})]

    trio.run(main)


def test_rerunning_a_cancelled_held_run_does_not_bring_its_holds_back(tmp_path: Path) -> None:
    log: list[Any] = []
    path = tmp_path / "j.db"

    async def main() -> None:
        coordinator = Coordinator(registry(log), on_failure="hold", journal=SqliteJournal(path))
        specs = [
            NodeSpec("step", id="a", inputs={"broken": True}),
            NodeSpec("step", id="b", deps=["a"]),
            NodeSpec("step", id="z"),
        ]
        async with coordinator.open_run(specs, run_id="r") as run:
            await wait_idle(run.events())
            run.cancel()
        with trio.fail_after(5):  # it used to wait forever at RunIdle(held=('a',))
            report = await coordinator.resume("r", rerun_from=["z"])
        assert report.nodes["a"].status is S.FAILED and not report.nodes["a"].held

    trio.run(main)


def test_run_cancel_at_rest_records_the_end_in_the_journal(tmp_path: Path) -> None:
    """Before: about one run in three stayed 'running' with its last outcomes lost."""
    log: list[Any] = []
    for attempt in range(6):
        path = tmp_path / f"j{attempt}.db"

        async def main(path: Path = path) -> Any:
            coordinator = Coordinator(registry(log), on_failure="hold", journal=SqliteJournal(path))
            specs = [
                NodeSpec("step", id="a", inputs={"broken": True}),
                NodeSpec("step", id="b", deps=["a"]),
                NodeSpec("step", id="p", branch="paused"),
            ]
            async with coordinator.open_run(specs, run_id="r") as run:
                # Subscribed before the submit: under load, `a` can fail and the run
                # come to rest (its one RunIdle) while the submit is still on its way.
                events = run.events()
                await run.submit(PauseBranch("paused"))
                with trio.fail_after(60):  # a guard against a hang, not a timing
                    await wait_idle(events)
                run.cancel()
            return run.report()

        live = trio.run(main)
        journal = SqliteJournal(path, read_only=True)
        assert [info.status for info in journal.runs()] == ["finished"]
        assert journal.report("r").nodes == live.nodes


def test_retry_node_on_a_held_deferred_node_waits_for_its_branch_again() -> None:
    log: list[Any] = []

    async def main() -> None:
        coordinator = Coordinator(registry(log), on_failure="hold")
        specs = [
            NodeSpec("step", id="f1", branch="crawl"),
            NodeSpec("fanin", id="sum", deps=["f1"], defer=True, inputs={"fail_until": 1}),
        ]
        async with coordinator.open_run(specs) as run:
            await wait_idle(run.events())
            await run.submit(AddNode(NodeSpec("step", id="f2", branch="crawl", inputs={"t": 5})))
            await run.submit(RetryNode("sum"))
        report = run.report()
        # Its second attempt ran once f2 had succeeded (it is in ctx.cache).
        assert report.nodes["sum"].outputs == ["f1", "f2"]

    run_mock(main)


def test_a_deferred_node_in_a_paused_branch_waits_for_the_resume() -> None:
    log: list[Any] = []

    async def main() -> None:
        specs = [
            NodeSpec("step", id="f1", branch="crawl", inputs={"t": 1}),
            NodeSpec("fanin", id="sum", deps=["f1"], defer=True),
        ]
        async with Coordinator(registry(log)).open_run(specs) as run:
            events = run.events()
            await trio.sleep(0.5)
            await run.submit(PauseBranch("crawl"))
            idle = await wait_idle(events)
            assert idle.branches == ("crawl",)
            assert run.graph.status("sum") is S.PENDING
            await run.submit(AddNode(NodeSpec("step", id="f2", branch="crawl", inputs={"t": 3})))
            await run.submit(ResumeBranch("crawl"))
        report = run.report()
        assert report.nodes["sum"].outputs == ["f1", "f2"]
        assert report.nodes["sum"].started_at == report.nodes["f2"].finished_at

    run_mock(main)


def test_complete_node_with_outputs_that_cannot_be_frozen_changes_nothing() -> None:
    log: list[Any] = []

    async def main() -> None:
        coordinator = Coordinator(registry(log), on_failure="hold")
        async with coordinator.open_run([NodeSpec("step", id="a", inputs={"broken": True})]) as run:
            await wait_idle(run.events())
            loop: list[Any] = []
            loop.append(loop)
            with pytest.raises(CommandRejectedError, match="outputs cannot be made read-only"):
                await run.submit(CompleteNode("a", loop))
            assert run.graph.held == ("a",) and run.statistics().unfinished == 0
            await run.submit(CompleteNode("a", 5))
        assert run.report().success

    run_mock(main)


def test_complete_node_is_accepted_for_a_node_waiting_again_after_a_rerun(tmp_path: Path) -> None:
    log: list[Any] = []

    async def main() -> None:
        journal = SqliteJournal(tmp_path / "j.db")
        coordinator = Coordinator(registry(log), journal=journal)
        specs = [
            NodeSpec("step", id="a", inputs={"t": 5}),
            NodeSpec("step", id="b", deps=["a"], inputs={"broken": True}),
        ]
        await coordinator.run(specs, run_id="r")
        async with coordinator.open_run(resume="r", rerun_from=["a"]) as run:
            await run.submit(CompleteNode("b", 7))  # b waits for a again: not started
        report = run.report()
        assert report.nodes["b"].supplied and report.nodes["b"].outputs == 7

    trio.run(main)


@pytest.mark.parametrize("field", ["max_retry_delay", "timeout"])
def test_infinite_limits_under_a_journal_are_refused_naming_the_node(
    tmp_path: Path, field: str
) -> None:
    log: list[Any] = []

    async def main() -> None:
        coordinator = Coordinator(registry(log), journal=SqliteJournal(tmp_path / "j.db"))
        with pytest.raises(InvalidGraphError, match=f"node 'x': {field}=inf cannot be stored"):
            await coordinator.run([NodeSpec("step", id="x", **{field: math.inf})])
        async with coordinator.open_run([NodeSpec("step", id="y")]) as run:
            with pytest.raises(CommandRejectedError, match=f"{field}=inf cannot be stored"):
                await run.submit(AddNode(NodeSpec("step", id="x", **{field: math.inf})))
        assert run.report().success

    trio.run(main)


def test_the_deferred_count_drops_when_a_due_node_is_cancelled() -> None:
    log: list[Any] = []

    async def main() -> None:
        specs = [
            NodeSpec("step", id="f1", branch="crawl"),
            NodeSpec("step", id="long", branch="crawl", inputs={"t": 100}),
            NodeSpec("fanin", id="sum", deps=["f1"], defer=True),
        ]
        async with Coordinator(registry(log)).open_run(specs) as run:
            await trio.sleep(1)
            assert run.statistics().deferred == 1
            await run.shutdown(5)
            assert run.statistics().deferred == 0

    run_mock(main)


def test_dagtrio_resume_stops_at_rest_saying_what_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody can decide from the shell: it used to wait at RunIdle forever."""
    (tmp_path / "holdflow.py").write_text(
        "import trio\n"
        "from dagtrio import ActionRegistry\n"
        "registry = ActionRegistry()\n"
        "@registry.action()\n"
        "async def step(ctx):\n"
        "    await trio.sleep(0)\n"
        "    raise RuntimeError('still broken')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "holdflow", raising=False)
    import holdflow  # type: ignore[import-not-found]

    path = tmp_path / "j.db"

    async def first() -> None:
        coordinator = Coordinator(holdflow.registry, on_failure="hold", journal=SqliteJournal(path))
        async with coordinator.open_run([NodeSpec("step", id="a")], run_id="r") as run:
            async for event in run.events():
                if isinstance(event, NodeFailed):
                    await run.shutdown()

    trio.run(first)
    code = cli(["resume", str(path), "r", "--actions", "holdflow", "--failed"])
    assert code == 1
    err = capsys.readouterr().err
    assert "is waiting for a decision; it stays resumable" in err
    assert "held (failed, on_failure='hold'): a" in err
    assert [info.status for info in SqliteJournal(path, read_only=True).runs()] == ["running"]
