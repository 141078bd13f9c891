"""Per-branch worker crews: cancellation races (branch cancel, shutdown, fail_fast,
outer cancel), actions with their own nurseries, and retired crews."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from dagtrio import (
    ActionRegistry,
    CancelBranch,
    Coordinator,
    NodeSpec,
    NodeStatus,
)


def registry(probe):
    reg = ActionRegistry()

    @reg.action("sleep")
    async def sleep(ctx):
        probe["now"] += 1
        probe["peak"] = max(probe["peak"], probe["now"])
        try:
            await trio.sleep(ctx.inputs.get("t", 1))
        finally:
            probe["now"] -= 1
        return ctx.node_id

    return reg


@pytest.mark.parametrize("cap", [0, 1, 5])
@pytest.mark.parametrize("when", [0, 0.5, 1, 2, 2.5, 3])
@pytest.mark.parametrize("maxp", [1, 3, 8])
async def test_cancel_branch_races(autojump_clock, cap, when, maxp):
    probe = {"now": 0, "peak": 0}
    specs = []
    for i in range(12):
        specs.append(NodeSpec("sleep", id=f"x{i}", branch="main/x", inputs={"t": 1 + i % 3}))
        specs.append(NodeSpec("sleep", id=f"y{i}", branch="main/x/y", inputs={"t": 1 + i % 2}))
        specs.append(NodeSpec("sleep", id=f"m{i}", inputs={"t": 1 + i % 2}))
    specs.append(NodeSpec("sleep", id="after", deps=["m11"], branch="main/x"))
    coord = Coordinator(registry(probe), max_parallel=maxp, command_capacity=cap)
    async with coord.open_run(specs) as run:
        await trio.sleep(when)
        await run.submit(CancelBranch("main/x"))
        report = await run.wait()
    assert probe["now"] == 0
    assert probe["peak"] <= maxp
    for nid, rec in report.nodes.items():
        if nid.startswith("m"):
            assert rec.status is NodeStatus.SUCCEEDED, (nid, rec)
        else:
            assert rec.status in (NodeStatus.SUCCEEDED, NodeStatus.CANCELLED), (nid, rec)


@pytest.mark.parametrize("grace", [0, 0.5, 1.5, None])
@pytest.mark.parametrize("when", [0, 0.5, 1])
async def test_shutdown(autojump_clock, grace, when):
    probe = {"now": 0, "peak": 0}
    specs = [
        NodeSpec("sleep", id=f"n{i}", branch=f"main/b{i % 3}", inputs={"t": 1 + i % 3})
        for i in range(20)
    ]
    coord = Coordinator(registry(probe), max_parallel=6, command_capacity=0)
    async with coord.open_run(specs) as run:
        if when:
            await trio.sleep(when)
        await run.shutdown(grace)
        report = await run.wait()
    assert probe["now"] == 0
    assert not report.success
    assert all(r.status.is_final for r in report.nodes.values())


async def test_cancel_then_new_nodes_in_other_branch(autojump_clock):
    probe = {"now": 0, "peak": 0}
    specs = [NodeSpec("sleep", id=f"x{i}", branch="main/x", inputs={"t": 5}) for i in range(4)]
    coord = Coordinator(registry(probe), max_parallel=4, command_capacity=0)
    async with coord.open_run(specs) as run:
        await trio.sleep(1)
        await run.submit(CancelBranch("main/x"))
        from dagtrio import AddNodes

        await run.submit(
            AddNodes([NodeSpec("sleep", id=f"z{i}", branch="main/z") for i in range(6)])
        )
        await run.submit(
            AddNodes([NodeSpec("sleep", id=f"x-late{i}", branch="main/x") for i in range(2)])
        )
        report = await run.wait()
    assert [report.nodes[f"x{i}"].status for i in range(4)] == [NodeStatus.CANCELLED] * 4
    assert all(report.nodes[f"z{i}"].status is NodeStatus.SUCCEEDED for i in range(6))
    assert all(report.nodes[f"x-late{i}"].status is NodeStatus.CANCELLED for i in range(2))
    assert probe["peak"] <= 4


async def test_fail_fast(autojump_clock):
    reg = ActionRegistry()

    @reg.action("boom")
    async def boom(ctx):
        await trio.sleep(1)
        raise RuntimeError("x")

    @reg.action("slow")
    async def slow(ctx):
        await trio.sleep(10)

    specs = [NodeSpec("boom", id="b")] + [
        NodeSpec("slow", id=f"s{i}", branch=f"main/{i}") for i in range(5)
    ]
    report = await Coordinator(reg, on_failure="fail_fast", command_capacity=0).run(specs)
    assert report.nodes["b"].status is NodeStatus.FAILED
    assert all(report.nodes[f"s{i}"].status is NodeStatus.CANCELLED for i in range(5))
    assert trio.current_time() < 5


async def test_outer_cancel(autojump_clock):
    probe = {"now": 0, "peak": 0}
    specs = [
        NodeSpec("sleep", id=f"n{i}", branch=f"main/b{i % 3}", inputs={"t": 100}) for i in range(20)
    ]
    coord = Coordinator(registry(probe), max_parallel=6, command_capacity=0)
    with trio.move_on_after(3):
        async with coord.open_run(specs) as run:
            pass
    assert probe["now"] == 0
    assert all(r.status.is_final for r in run.report().nodes.values())


@pytest.mark.parametrize("cap", [0, 3])
async def test_cancel_branch_whose_action_has_a_nursery(autojump_clock, cap):
    reg = ActionRegistry()

    @reg.action("nested")
    async def nested(ctx):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 100)
            await trio.sleep(100)

    @reg.action("quick")
    async def quick(ctx):
        await trio.sleep(1)

    specs = [NodeSpec("nested", id=f"x{i}", branch="main/x") for i in range(3)]
    specs += [NodeSpec("quick", id=f"m{i}") for i in range(6)]
    async with Coordinator(reg, max_parallel=4, command_capacity=cap).open_run(specs) as run:
        await trio.sleep(0.5)
        await run.submit(CancelBranch("main/x"))
        with trio.fail_after(50):
            report = await run.wait()
    assert all(report.nodes[f"x{i}"].status is NodeStatus.CANCELLED for i in range(3))
    assert all(report.nodes[f"m{i}"].status is NodeStatus.SUCCEEDED for i in range(6))


@pytest.mark.parametrize("maxp", [1, 2, 5])
async def test_idle_crews_are_retired(autojump_clock, maxp):
    probe = {"now": 0, "peak": 0}
    specs = [
        NodeSpec(
            "sleep",
            id=f"n{i}",
            branch=f"main/t{i}",
            inputs={"t": i % 3},
            deps=[f"n{i - 7}"] if i >= 7 else [],
        )
        for i in range(200)
    ]
    most = 0
    async with Coordinator(registry(probe), max_parallel=maxp, command_capacity=0).open_run(
        specs
    ) as run:
        while not run.finished:
            most = max(most, len(run._crews))
            await trio.sleep(0.25)
    assert run.report().success
    assert most <= 2 * maxp
    assert probe["peak"] <= maxp
