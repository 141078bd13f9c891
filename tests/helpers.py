"""Actions and scenario plumbing shared by the tests."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

from dagtrio import ActionRegistry, NodeCtx, RunIdle


class Probe:
    """Watches actions from the inside: who runs, how many at once, what they saw."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.peak = 0
        self.violations: list[str] = []
        self.attempts: dict[str, int] = {}
        self.start_times: dict[str, list[float]] = {}

    def enter(self, ctx: NodeCtx, deps: tuple[str, ...] = ()) -> None:
        if ctx.node_id in self.running:
            self.violations.append(f"{ctx.node_id} runs twice at once")
        for dep in ctx.upstream:
            if dep not in ctx.cache:
                self.violations.append(f"{ctx.node_id} started before {dep} succeeded")
        self.running.add(ctx.node_id)
        self.peak = max(self.peak, len(self.running))
        self.attempts[ctx.node_id] = self.attempts.get(ctx.node_id, 0) + 1
        if ctx.attempt != self.attempts[ctx.node_id]:
            self.violations.append(f"{ctx.node_id} attempt {ctx.attempt} numbered wrong")
        self.start_times.setdefault(ctx.node_id, []).append(trio.current_time())

    def leave(self, ctx: NodeCtx) -> None:
        self.running.discard(ctx.node_id)


def work_registry() -> ActionRegistry:
    """``work``: sleeps ``inputs['delay']``, fails its first ``inputs['fail']`` attempts.

    Returns the sum of its upstream outputs plus one, so outputs check data flow.
    The probe is ``ctx.app_data``.
    """
    registry = ActionRegistry()

    @registry.action()
    async def work(ctx: NodeCtx) -> Any:
        probe: Probe = ctx.app_data
        probe.enter(ctx)
        try:
            delay = ctx.inputs.get("delay", 0)
            if delay:
                await trio.sleep(delay)
            else:
                await trio.lowlevel.checkpoint()
            if ctx.attempt <= ctx.inputs.get("fail", 0):
                raise RuntimeError(f"planned failure {ctx.attempt}")
            return 1 + sum(ctx.upstream.values())
        finally:
            probe.leave(ctx)

    @registry.action()
    async def noop(ctx: NodeCtx) -> None:
        await trio.lowlevel.checkpoint()

    return registry


def run_mock(main: Callable[[], Awaitable[Any]], limit: float = 100_000.0) -> Any:
    """Run ``main`` under an autojumping MockClock; a hang becomes TooSlowError at once.

    With autojump, virtual time leaps to the next deadline whenever every task is
    blocked, so a deadlocked run reaches the ``limit`` deadline instantly.
    """

    async def guarded() -> Any:
        with trio.fail_after(limit):
            return await main()

    return trio.run(guarded, clock=trio.testing.MockClock(autojump_threshold=0))


async def wait_idle(events: Any) -> RunIdle:
    """The next `RunIdle` of an event stream; fails if the run ends without one."""
    async for event in events:
        if isinstance(event, RunIdle):
            return event
    raise AssertionError("the run ended without coming to rest")


def same(a: Any, b: Any) -> bool:
    """Equal values, nan equal to nan, int/float/bool told apart, key order kept: what
    two parsers of one document must agree on."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
