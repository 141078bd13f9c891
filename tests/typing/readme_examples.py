"""The README's examples, as a user would type them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, assert_type

import trio

from dagtrio import (
    ActionRegistry,
    AddNode,
    CompleteNode,
    Coordinator,
    EventHook,
    ExecutionEvent,
    ExecutorCommand,
    HookContext,
    NodeCompleted,
    NodeCtx,
    NodeOutput,
    NodeProgress,
    NodeRecord,
    NodeSpec,
    PauseBranch,
    PermanentError,
    RetryNode,
    RunIdle,
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


# Steering a run in flight


async def ask_a_person(record: NodeRecord) -> tuple[bool, dict[str, Any] | None, Any]:
    await trio.lowlevel.checkpoint()
    return (record.attempts < 3, {"retry": True}, {"by": "hand"})


async def approve_held(specs: list[NodeSpec], journal: SqliteJournal) -> RunReport:
    coordinator = Coordinator(registry, on_failure="hold", journal=journal)
    async with coordinator.open_run(specs) as run:
        async for event in run.events():
            if isinstance(event, RunIdle) and event.held:
                assert_type(event.held, tuple[str, ...])
                for node in event.held:
                    retry, inputs, outputs = await ask_a_person(run.graph.record(node))
                    if retry:
                        await run.submit(RetryNode(node, inputs=inputs))
                    else:
                        await run.submit(CompleteNode(node, outputs))
    report = run.report()
    assert_type(report.nodes["a"].supplied, bool)
    assert_type(report.nodes["a"].held, bool)
    return report


@registry.action(retry_on=(TimeoutError, OSError))
async def flaky(ctx: NodeCtx) -> NodeOutput:
    await trio.lowlevel.checkpoint()
    if ctx.inputs.get("gone"):
        raise PermanentError("no such page")
    return NodeOutput.failed("try later", retry=ctx.attempt < 3)


@registry.action(retry_on=lambda exc: isinstance(exc, OSError) and exc.errno != 2)
async def picky(ctx: NodeCtx) -> None:
    await trio.lowlevel.checkpoint()


def capped() -> NodeSpec:
    return NodeSpec("flaky", try_count=8, retry_delay=1, max_retry_delay=30, retry_jitter=0.5)


async def rerun(coordinator: Coordinator, rows: list[int]) -> RunReport:
    await coordinator.resume("nightly-42", rerun="failed")
    await coordinator.resume("nightly-42", rerun_from=["clean"])
    return await coordinator.resume("nightly-42", outputs={"fetch": rows})


@registry.action()
async def answer(ctx: NodeCtx) -> str:
    tokens: list[str] = []
    for token in ("a", "b"):
        tokens.append(token)
        await ctx.emit({"token": token})
    return "".join(tokens)


async def watch_tokens(run_specs: list[NodeSpec]) -> list[object]:
    seen: list[object] = []
    async with Coordinator(registry).open_run(run_specs) as run:
        async for event in run.events():
            if isinstance(event, NodeProgress):
                assert_type(event.attempt, int)
                seen.append(event.payload)
    return seen
