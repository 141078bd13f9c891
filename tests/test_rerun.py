"""Re-running a journaled run (DESIGN.md §3): ``resume(rerun=, rerun_from=, outputs=)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    CancelBranch,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    InvalidGraphError,
    NodeCtx,
    NodeSpec,
    NodeStatus,
    RunResumed,
    SqliteJournal,
)
from dagtrio.cli.report import history
from dagtrio.testing import RecordingHook, check_run, dags

S = NodeStatus


class World:
    """What the actions of these tests consult: which nodes are broken, who ran."""

    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.ran: list[str] = []


def world_registry(world: World) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action()
    async def work(ctx: NodeCtx) -> Any:
        world.ran.append(ctx.node_id)
        await trio.sleep(ctx.inputs.get("delay", 0))
        if ctx.node_id in world.broken:
            raise RuntimeError(f"{ctx.node_id} is broken")
        return 1 + sum(ctx.upstream.values())

    return registry


def diamond() -> list[NodeSpec]:
    return [
        NodeSpec("work", id="a"),
        NodeSpec("work", id="b", deps=["a"], try_count=2),
        NodeSpec("work", id="c", deps=["b"]),
        NodeSpec("work", id="d", deps=["a"]),
        NodeSpec("work", id="e", deps=["c", "d"]),
    ]


def statuses(report: Any) -> dict[str, str]:
    return {node: record.status.value for node, record in report.nodes.items()}


def test_rerun_failed_runs_what_did_not_succeed_with_a_fresh_try_count(tmp_path: Path) -> None:
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")
    coordinator = Coordinator(world_registry(world), journal=journal)

    async def main() -> None:
        world.broken = {"b"}
        first = await coordinator.run(diamond(), run_id="r")
        assert statuses(first) == {
            "a": "succeeded",
            "b": "failed",
            "c": "skipped",
            "d": "succeeded",
            "e": "skipped",
        }
        world.broken, world.ran = set(), []
        recorder = RecordingHook()
        again = await Coordinator(world_registry(world), [recorder], journal=journal).resume(
            "r", rerun="failed"
        )
        assert again.success
        assert sorted(world.ran) == ["b", "c", "e"]  # a and d kept their outputs
        assert again.nodes["b"].attempts == 3  # 2 before, 1 now: the count goes on
        assert again.nodes["e"].outputs == 1 + (1 + 2) + 2
        resumed = [e for e in recorder.events if isinstance(e, RunResumed)]
        assert resumed == [RunResumed(("b", "c", "e"))]
        check_run(again)
        # One run in the journal, with its whole history.
        assert [info.run_id for info in journal.runs()] == ["r"]
        assert journal.report("r").nodes == again.nodes
        steps = history(journal.stored_run("r"))
        assert [node for _, node, _ in steps] == ["b", "c", "e", "", "b", "c", "e"]
        assert steps[3][2] == "re-run: what failed"

    trio.run(main)


def test_rerun_from_runs_a_node_and_everything_below_it(tmp_path: Path) -> None:
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")
    coordinator = Coordinator(world_registry(world), journal=journal)

    async def main() -> None:
        assert (await coordinator.run(diamond(), run_id="r")).success
        world.ran = []
        report = await coordinator.resume("r", rerun_from=["d"])
        assert report.success
        assert sorted(world.ran) == ["d", "e"]
        world.ran = []
        report = await coordinator.resume("r", rerun_from=("b", "d"))
        assert sorted(world.ran) == ["b", "c", "d", "e"]
        assert report.nodes["a"].attempts == 1 and report.nodes["e"].attempts == 3

    trio.run(main)


def test_outputs_supply_a_node_and_run_what_is_below_it_again(tmp_path: Path) -> None:
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")
    coordinator = Coordinator(world_registry(world), journal=journal)

    async def main() -> None:
        world.broken = {"b"}
        await coordinator.run(diamond(), run_id="r")
        world.ran = []
        report = await coordinator.resume("r", outputs={"b": 100})
        assert report.success  # nothing else failed
        assert sorted(world.ran) == ["c", "e"]
        b = report.nodes["b"]
        assert (b.status, b.supplied, b.outputs, b.attempts) == (S.SUCCEEDED, True, 100, 2)
        assert report.nodes["c"].outputs == 101
        assert journal.report("r").nodes == report.nodes

    trio.run(main)


def test_a_rerun_of_a_run_whose_process_died_and_of_a_shut_down_run(tmp_path: Path) -> None:
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")

    async def crash() -> None:
        with trio.move_on_after(5):
            specs = [
                NodeSpec("work", id="x"),
                NodeSpec("work", id="slow", inputs={"delay": 100}),
                NodeSpec("work", id="y", deps=["x"]),
            ]
            world.broken = {"x"}
            await Coordinator(world_registry(world), journal=journal).run(specs, run_id="dead")

    async def shut() -> None:
        async with Coordinator(world_registry(world), journal=journal).open_run(
            [NodeSpec("work", id="p"), NodeSpec("work", id="q", inputs={"delay": 100})],
            run_id="shut",
        ) as run:
            await trio.sleep(1)
            await run.shutdown(0)

    async def rerun() -> None:
        world.broken, world.ran = set(), []
        report = await Coordinator(world_registry(world), journal=journal).resume(
            "dead", rerun="failed"
        )
        assert report.success and sorted(world.ran) == ["slow", "x", "y"]
        world.ran = []
        report = await Coordinator(world_registry(world), journal=journal).resume(
            "shut", rerun="failed"
        )
        # The shutdown no longer holds: the cancelled node runs, and the run succeeds.
        assert report.success and world.ran == ["q"]

    trio.run(crash, clock=trio.testing.MockClock(autojump_threshold=0))
    trio.run(shut, clock=trio.testing.MockClock(autojump_threshold=0))
    trio.run(rerun, clock=trio.testing.MockClock(autojump_threshold=0))


def test_bad_rerun_arguments_are_refused_before_anything_runs_or_is_written(
    tmp_path: Path,
) -> None:
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")
    coordinator = Coordinator(world_registry(world), journal=journal)

    async def main() -> None:
        specs = [*diamond(), NodeSpec("work", id="gone", branch="tool", inputs={"delay": 5})]
        async with coordinator.open_run(specs, run_id="r") as run:
            await run.submit(CancelBranch("tool"))
        records = len(journal.stored_run("r").records)
        world.ran = []
        cases: list[tuple[dict[str, Any], type[Exception], str]] = [
            ({"rerun_from": ["nope"]}, InvalidGraphError, "node 'nope': is not in run 'r'"),
            ({"outputs": {"nope": 1}}, InvalidGraphError, "node 'nope': is not in run 'r'"),
            ({"rerun_from": ["gone"]}, InvalidGraphError, "branch 'tool' was cancelled"),
            ({"outputs": {"b": {1, 2}}}, InvalidGraphError, "cannot be stored in the journal"),
            ({"rerun": "all"}, ValueError, "rerun must be 'failed' or None"),
            ({"rerun_from": "a"}, TypeError, r"write rerun_from=\['a'\]"),
            ({"rerun_from": [1]}, TypeError, "rerun_from must hold node ids"),
            ({"outputs": [("a", 1)]}, TypeError, "outputs must map node ids"),
        ]
        for kwargs, error, message in cases:
            with pytest.raises(error, match=message):
                await coordinator.resume("r", **kwargs)
        with pytest.raises(ValueError, match="go with resume=RUN_ID"):
            async with coordinator.open_run(diamond(), rerun="failed"):
                pass
        assert world.ran == []
        stored = journal.stored_run("r")
        assert len(stored.records) == records and stored.info.status == "finished"
        # Still claimable: every refusal let go of the run.
        report = await coordinator.resume("r", rerun_from=["e"])
        assert world.ran == ["e"] and report.nodes["gone"].status is S.CANCELLED

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# ---------------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(action="work", max_nodes=10), st.data())
def test_a_rerun_ends_as_an_uninterrupted_run_with_the_same_decisions(
    specs: list[NodeSpec], data: Any
) -> None:
    """Random failures, then a re-run of what failed, from random nodes and with random
    outputs supplied: every node the re-run covers succeeds with the outputs the
    decisions give, what it does not cover is not run again, and the journal's report
    equals the live one."""
    ids = [spec.id for spec in specs]
    assert all(ids)
    broken = set(data.draw(st.lists(st.sampled_from(ids), unique=True), label="broken"))
    start = data.draw(st.lists(st.sampled_from(ids), unique=True, max_size=2), label="from")
    supplied = data.draw(
        st.dictionaries(st.sampled_from(ids), st.integers(0, 9), max_size=2), label="outputs"
    )
    world = World()
    deps = {spec.id: spec.deps for spec in specs}
    below: dict[str, set[str]] = {}

    def descendants(node: str) -> set[str]:
        if node not in below:
            below[node] = {node} | {
                d for n, ds in deps.items() if node in ds for d in descendants(n)
            }
        return below[node]

    async def main(path: Path) -> None:
        journal = SqliteJournal(path)
        world.broken = set(broken)
        first = await Coordinator(world_registry(world), journal=journal).run(specs, run_id="r")
        world.broken, world.ran = set(), []
        again = await Coordinator(world_registry(world), journal=journal).resume(
            "r", rerun="failed", rerun_from=start, outputs=supplied
        )
        check_run(again)
        assert again.success
        covered = {n for n in ids if first.nodes[n].status is not S.SUCCEEDED}
        for node in (*start, *supplied):
            covered |= descendants(node)
        assert sorted(world.ran) == sorted(covered - set(supplied))
        expected: dict[str, Any] = {}
        for node in _topological(ids, deps):
            if node in supplied:
                expected[node] = supplied[node]
            else:
                expected[node] = 1 + sum(expected[d] for d in deps[node])
        assert again.outputs() == expected
        assert journal.report("r").nodes == again.nodes
        journal.close()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, Path(tmp) / "j.db", clock=trio.testing.MockClock(autojump_threshold=0))


def _topological(ids: list[Any], deps: dict[Any, tuple[str, ...]]) -> list[Any]:
    done: list[Any] = []
    seen: set[Any] = set()

    def visit(node: Any) -> None:
        if node in seen:
            return
        seen.add(node)
        for dep in deps[node]:
            visit(dep)
        done.append(node)

    for node in ids:
        visit(node)
    return done


def test_hooks_see_a_rerun_and_may_grow_it(tmp_path: Path) -> None:
    """A hook that adds a node with an explicit id per completion adds it once: the
    re-run's completions reach it, the earlier additions are duplicates."""
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")

    class Grow(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            from dagtrio import AddNode, NodeCompleted

            if isinstance(event, NodeCompleted) and event.node.node == "b":
                return [AddNode(NodeSpec("work", id="b/after", deps=["b"]))]
            return None

    async def main() -> None:
        world.broken = {"b"}
        coordinator = Coordinator(world_registry(world), [Grow()], journal=journal)
        await coordinator.run(diamond(), run_id="r")
        world.broken = set()
        report = await coordinator.resume("r", rerun="failed")
        assert report.success
        assert report.nodes["b/after"].outputs == 1 + report.nodes["b"].outputs

    trio.run(main)


def test_rerun_keeps_specs_as_they_were(tmp_path: Path) -> None:
    """The re-run uses the specs the journal has (inputs changed by SetNodeInputs
    included), not new ones."""
    world = World()
    journal = SqliteJournal(tmp_path / "j.db")
    specs = [attrs.evolve(spec, inputs={"delay": 1}) for spec in diamond()]

    async def main() -> None:
        coordinator = Coordinator(world_registry(world), journal=journal)
        await coordinator.run(specs, run_id="r")
        report = await coordinator.resume("r", rerun_from=["a"])
        assert journal.stored_run("r").info.status == "finished"
        assert report.finished_at is not None and report.started_at < report.finished_at

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
