"""Issue 16's fresh-eyes review: each test failed before its fix.

- a context kept from an earlier attempt showed a later attempt's inputs after
  ``RetryNode(inputs=...)`` (`LiveCtx` read the node's current spec);
- with ``critical_path``, a node that went back to the queue (a retry, a held node's
  ``RetryNode``) kept the rank it had before the graph grew under it;
- a KeyboardInterrupt raised by an action came with an internal RuntimeError (the
  coordinator started more work in the crew's closing nursery).
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from dagtrio import (
    ActionRegistry,
    AddNodes,
    Coordinator,
    ExecutionEvent,
    HookContext,
    NodeCtx,
    NodeFailed,
    NodeSpec,
    NodeStarted,
    RetryNode,
)


def test_a_kept_context_keeps_its_attempts_inputs_after_a_retry_with_new_ones() -> None:
    registry = ActionRegistry()
    seen: dict[Any, NodeCtx] = {}

    @registry.action()
    async def work(ctx: NodeCtx) -> Any:
        seen[ctx.attempt] = ctx
        seen["plain", ctx.attempt] = NodeCtx(
            ctx.dag_name,
            ctx.node_id,
            ctx.run_id,
            ctx.inputs,
            ctx.upstream,
            ctx.attempt,
            ctx.cache,
            ctx.app_data,
            ctx.branch,
        )
        if ctx.attempt == 1:
            raise RuntimeError("boom")
        return ctx.inputs["x"]

    retried: list[int] = []

    async def hook(hctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeFailed) and not retried:
            retried.append(1)
            return [RetryNode("n", inputs={"x": 2})]
        return None

    async def main() -> None:
        with trio.fail_after(5):
            report = await Coordinator(registry, hooks=[hook], on_failure="hold").run(
                [NodeSpec("work", id="n", inputs={"x": 1})]
            )
        assert report.success

    trio.run(main)
    assert dict(seen[1].inputs) == {"x": 1}
    assert dict(seen[2].inputs) == {"x": 2}
    assert seen[1] == seen["plain", 1]


def test_critical_path_a_retry_keeps_the_rank_its_node_gained_while_it_ran() -> None:
    registry = ActionRegistry()
    starts: list[tuple[str, int]] = []

    @registry.action()
    async def work(ctx: NodeCtx) -> None:
        starts.append((ctx.node_id, ctx.attempt))
        await trio.sleep(1)
        if ctx.node_id == "a" and ctx.attempt == 1:
            raise RuntimeError("transient")

    async def hook(hctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeStarted) and event.node.node == "a" and event.attempt == 1:
            # While a runs: an independent node z (path 5) and a long tail under a (100).
            return [
                AddNodes(
                    (
                        NodeSpec("work", id="z", estimate=5.0),
                        NodeSpec("work", id="tail", deps=("a",), estimate=100.0),
                    )
                )
            ]

    async def main() -> None:
        coord = Coordinator(registry, hooks=[hook], max_parallel=1, order="critical_path")
        report = await coord.run([NodeSpec("work", id="a", estimate=1.0, try_count=2)])
        assert report.success, report

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # After a's failed attempt, ready are a (remaining path 1 + 100) and z (5): a first.
    assert starts[:2] == [("a", 1), ("a", 2)], starts


def test_critical_path_a_held_node_retried_keeps_the_rank_it_gained_while_held() -> None:

    registry = ActionRegistry()
    starts: list[tuple[str, int]] = []

    @registry.action()
    async def work(ctx: NodeCtx) -> None:
        starts.append((ctx.node_id, ctx.attempt))
        await trio.sleep(1)
        if ctx.node_id == "a" and ctx.attempt == 1:
            raise RuntimeError("needs a person")

    async def hook(hctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeFailed) and event.node.node == "a":
            # While a is held: a long tail under it, an independent node, then retry a.
            return [
                AddNodes(
                    (
                        NodeSpec("work", id="tail", deps=("a",), estimate=100.0),
                        NodeSpec("work", id="z", estimate=5.0),
                    )
                ),
                RetryNode("a"),
            ]

    async def main() -> None:
        coord = Coordinator(
            registry, hooks=[hook], max_parallel=1, order="critical_path", on_failure="hold"
        )
        report = await coord.run([NodeSpec("work", id="a", estimate=1.0)])
        assert report.success, report

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert starts[:2] == [("a", 1), ("a", 2)], starts


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def test_a_keyboard_interrupt_from_an_action_comes_alone() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def work(ctx: NodeCtx) -> int:
        await trio.sleep(1)
        if ctx.node_id == "n0":
            raise KeyboardInterrupt
        return 1

    async def main() -> None:
        await Coordinator(registry, max_parallel=4).run(
            [NodeSpec("work", id=f"n{i}") for i in range(12)]
        )

    seen = []
    for _ in range(10):
        try:
            trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        except BaseException as exc:
            seen.append([type(leaf).__name__ for leaf in _leaves(exc)])
    assert seen == [["KeyboardInterrupt"]] * 10, seen
