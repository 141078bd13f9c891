"""The README's examples, as a user would type them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, assert_type

import trio

from dagtrio import (
    ActionRegistry,
    AddNode,
    Coordinator,
    EventHook,
    ExecutionEvent,
    ExecutorCommand,
    HookContext,
    NodeCompleted,
    NodeCtx,
    NodeRecord,
    NodeSpec,
    PauseBranch,
    RunReport,
    SqliteJournal,
)
from dagtrio.executors import DaskExecutor, Ending, ProcessExecutor, ThreadExecutor

registry = ActionRegistry()


@registry.action()
async def fetch(ctx: NodeCtx) -> list[int]:
    await trio.sleep(0.1)
    return [1, 2, 3]


@registry.action()
def total(ctx: NodeCtx) -> int:
    return sum(sum(v) for v in ctx.upstream.values())


class Planner(EventHook):
    async def handle(
        self, ctx: HookContext, event: ExecutionEvent
    ) -> Iterable[ExecutorCommand] | ExecutorCommand | None:
        if isinstance(event, NodeCompleted) and event.node.node == "a":
            return [AddNode(NodeSpec("total", id="sum", deps=["a", "b"]))]
        return None


async def first_dag() -> None:
    specs = [NodeSpec("fetch", id="a"), NodeSpec("fetch", id="b")]
    report = await Coordinator(registry, hooks=[Planner()]).run(specs)
    assert_type(report, RunReport)
    record = report.nodes["sum"]
    assert_type(record, NodeRecord)
    print(report.success, record.outputs, record.traceback)


def needs_approval(event: ExecutionEvent) -> bool:
    return isinstance(event, NodeCompleted)


async def steer(specs: list[NodeSpec]) -> RunReport:
    coordinator = Coordinator(registry)
    async with coordinator.open_run(specs) as run:
        async for event in run.events():
            if needs_approval(event):
                await run.submit(PauseBranch("main/tool-3", reason="ask a person"))
    return await run.wait()


async def durable(specs: list[NodeSpec], planner: EventHook) -> RunReport:
    journal = SqliteJournal("runs.db")
    coordinator = Coordinator(registry, [planner], journal=journal)
    await coordinator.run(specs, run_id="nightly-42")
    # ... after a crash, in a new process:
    return await coordinator.resume("nightly-42")


@registry.action(cache=True)
async def embed(ctx: NodeCtx) -> list[float]:
    return [0.0]


@registry.action(cache=lambda ctx: ["v2", ctx.inputs["url"]])
async def fetch_url(ctx: NodeCtx) -> str:
    return str(ctx.inputs["url"])


def cached_coordinator() -> Coordinator:
    journal = SqliteJournal("runs.db")
    return Coordinator(registry, journal=journal, cache=journal)


def function_hook() -> Coordinator:
    async def log(ctx: HookContext, event: ExecutionEvent) -> None:
        print(ctx.run_id, event)

    def sync_log(ctx: HookContext, event: ExecutionEvent) -> Any:
        return None

    return Coordinator(registry, [log, sync_log, Planner()], max_parallel=8)


@registry.action(executor="process")
def crunch(ctx: NodeCtx) -> int:
    return sum(i * i for i in range(ctx.inputs["n"]))


def process_coordinator() -> Coordinator:
    executor = ProcessExecutor(max_workers=2, kill_on_cancel=True)
    assert_type(executor.ending, Ending)
    return Coordinator(
        registry,
        executors={"process": executor, "thread": ThreadExecutor(max_workers=8)},
    )


def crunch_here() -> NodeSpec:
    return NodeSpec("crunch", inputs={"n": 10}, executor="inline")


async def held_open() -> Ending | None:
    async with ProcessExecutor() as executor:
        assert_type(executor, ProcessExecutor)
        coordinator = Coordinator(registry, executors={"process": executor})
        report = await coordinator.run([NodeSpec("crunch", id="a", inputs={"n": 3})])
    return report.nodes["a"].ended


def dask_coordinator(address: str | None = None) -> Coordinator:
    executor = DaskExecutor(address, restart_on_cancel=True, connect_timeout=5)
    assert_type(executor.ending, Ending)
    return Coordinator(registry, executors={"dask": executor})
