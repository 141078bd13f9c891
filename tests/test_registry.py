"""ActionRegistry: naming actions, plain return values, sync functions in threads."""

from __future__ import annotations

import threading

import pytest
import trio

from dagtrio import (
    ActionRegistry,
    FunctionAction,
    NodeAction,
    NodeCtx,
    NodeOutput,
    NodeSpec,
    NodeStatus,
    UnknownActionError,
    run_dag,
)


def make_ctx(**inputs: object) -> NodeCtx:
    return NodeCtx("dag", "n", "run", inputs, {}, 1, {})


async def test_decorator_forms_and_lookup() -> None:
    registry = ActionRegistry()

    @registry.action
    async def bare(ctx: NodeCtx) -> int:
        return 1

    @registry.action()
    async def called(ctx: NodeCtx) -> int:
        return 2

    @registry.action("renamed")
    async def original(ctx: NodeCtx) -> int:
        return 3

    assert {"bare", "called", "renamed"} == set(registry) and len(registry) == 3
    assert "original" not in registry
    assert await bare(make_ctx()) == 1  # the function itself is returned unchanged
    action = registry.get("renamed")
    assert isinstance(action, NodeAction) and isinstance(action, FunctionAction)
    assert await action.execute(make_ctx()) == NodeOutput.ok(3)


async def test_node_output_returned_by_a_function_is_kept() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def explicit(ctx: NodeCtx) -> NodeOutput:
        return NodeOutput.failed("nope", code=7)

    assert await registry.get("explicit").execute(make_ctx()) == NodeOutput.failed("nope", code=7)


def test_unknown_and_duplicate_names_are_clear_errors() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def fetch(ctx: NodeCtx) -> None:
        pass

    with pytest.raises(UnknownActionError, match="no action named 'fecth'; registered: fetch"):
        registry.get("fecth")
    with pytest.raises(KeyError):
        registry.get("fecth")
    with pytest.raises(ValueError, match="already registered"):
        registry.action("fetch")(fetch)
    registry.action("fetch", replace=True)(fetch)


def test_register_checks_the_protocol() -> None:
    registry = ActionRegistry()

    class NoName:
        async def execute(self, ctx: NodeCtx) -> NodeOutput:
            return NodeOutput.ok()

    class SyncExecute:
        name = "sync"

        def execute(self, ctx: NodeCtx) -> NodeOutput:
            return NodeOutput.ok()

    with pytest.raises(TypeError, match="name"):
        registry.register(NoName())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async"):
        registry.register(SyncExecute())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_threads"):
        ActionRegistry(max_threads=0)


async def test_class_based_actions_run() -> None:
    class Shout:
        name = "shout"

        async def execute(self, ctx: NodeCtx) -> NodeOutput:
            return NodeOutput.ok(ctx.inputs["word"].upper())

    registry = ActionRegistry()
    registry.register(Shout())
    report = await run_dag([NodeSpec("shout", id="s", inputs={"word": "hi"})], registry)
    assert report.nodes["s"].outputs == "HI"


async def test_sync_functions_run_in_worker_threads_under_the_limiter() -> None:
    registry = ActionRegistry(max_threads=2)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0, "threads": set()}
    main_thread = threading.get_ident()
    release = threading.Event()
    both_in = trio.Event()

    @registry.action()
    def blocking(ctx: NodeCtx) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            state["threads"].add(threading.get_ident())
            full = state["now"] == 2
        if full:
            trio.from_thread.run_sync(both_in.set)
        release.wait(timeout=5)
        with lock:
            state["now"] -= 1
        return ctx.inputs["i"]

    async def open_gate() -> None:
        # Let the threads pile up against the limiter, then let them all go.
        await both_in.wait()
        release.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(open_gate)
        report = await run_dag(
            [NodeSpec("blocking", id=f"b{i}", inputs={"i": i}) for i in range(5)], registry
        )
    assert report.success
    assert [report.nodes[f"b{i}"].outputs for i in range(5)] == list(range(5))
    assert state["peak"] == 2
    assert main_thread not in state["threads"]


async def test_sync_action_exceptions_fail_the_attempt() -> None:
    registry = ActionRegistry()

    @registry.action()
    def broken(ctx: NodeCtx) -> None:
        raise ValueError("bad row")

    report = await run_dag([NodeSpec("broken", id="x")], registry)
    assert report.nodes["x"].status is NodeStatus.FAILED
    assert report.nodes["x"].error == "ValueError: bad row"
