"""The run's rules hold whatever executor runs the nodes (issue 12, item 6).

Generated graphs whose nodes run on a mix of executors, picked per node: ``inline``,
``thread`` (real threads, so the real clock), a replaced ``thread`` pool of one worker,
and an executor of the test's own that ships a `PortableCtx` and counts its lifetime.
The lifecycle rules (`check_run`), the data flow and the executor's lifetime must hold
for every mix, with failures and retries among them. Worker processes and a cluster
have their own tests (``test_process_executor.py``, ``test_dask_executor.py``): a
process pool per generated example would cost seconds each.
"""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import ActionRegistry, Coordinator, NodeSpec, NodeStatus
from dagtrio.executors import Executor, PortableCtx, ThreadExecutor
from dagtrio.testing import RecordingHook, check_run, dags

EXECUTORS = [None, "inline", "thread", "mine"]


class Counting(Executor):
    """Runs the function here, with a portable context, and counts starts and stops."""

    ending = "abandoned"

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0
        self.stops = 0
        self.attempts = 0

    async def start(self) -> None:
        self.starts += 1

    async def stop(self) -> None:
        self.stops += 1

    async def run(self, fn: Any, ctx: Any) -> Any:
        assert isinstance(ctx, PortableCtx)
        self.attempts += 1
        await trio.lowlevel.checkpoint()
        return fn(ctx)


def _registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action()
    def work(ctx: Any) -> int:
        if ctx.attempt <= ctx.inputs.get("fail", 0):
            raise RuntimeError(f"planned failure {ctx.attempt}")
        return 1 + sum(ctx.upstream.values())

    return registry


@settings(max_examples=60)
@given(
    dags(
        action="work",
        max_nodes=12,
        inputs=st.fixed_dictionaries({}, optional={"fail": st.integers(0, 2)}),
    ),
    st.data(),
)
def test_every_executor_mix_keeps_the_rules(specs: list[NodeSpec], data: Any) -> None:
    placed = [
        NodeSpec(
            spec.action,
            id=spec.id,
            deps=spec.deps,
            inputs=spec.inputs,
            try_count=data.draw(st.integers(1, 3)),
            executor=data.draw(st.sampled_from(EXECUTORS)),
        )
        for spec in specs
    ]
    mine = Counting()
    hook = RecordingHook()
    replace_thread = data.draw(st.booleans())
    executors: dict[str, Executor] = {"mine": mine}
    if replace_thread:
        executors["thread"] = ThreadExecutor(max_workers=1)

    async def main() -> Any:
        coordinator = Coordinator(
            _registry(), [hook], executors=executors, max_parallel=data.draw(st.integers(1, 4))
        )
        return await coordinator.run(placed)

    report = trio.run(main)
    check_run(report, hook.events)
    by_id = {spec.id: spec for spec in placed}
    expected: dict[str, int] = {}

    def value(node: str) -> int:
        if node not in expected:
            expected[node] = 1 + sum(value(dep) for dep in by_id[node].deps)
        return expected[node]

    for node, record in report.nodes.items():
        spec = by_id[node]
        fails = spec.inputs.get("fail", 0)
        deps_ok = all(report.nodes[dep].status is NodeStatus.SUCCEEDED for dep in spec.deps)
        if not deps_ok:
            assert record.status is NodeStatus.SKIPPED
        elif fails < spec.try_count:
            assert record.status is NodeStatus.SUCCEEDED
            assert record.outputs == value(node)
            assert record.attempts == fails + 1
        else:
            assert record.status is NodeStatus.FAILED
            assert record.attempts == spec.try_count
        assert record.ended is None  # nothing was cancelled or timed out
    uses_mine = any(
        spec.executor == "mine" and report.nodes[spec.id].attempts
        for spec in placed  # type: ignore[index]
    )
    assert (mine.starts, mine.stops) == ((1, 1) if uses_mine else (0, 0))
    assert mine.attempts == sum(
        report.nodes[spec.id].attempts
        for spec in placed
        if spec.executor == "mine"  # type: ignore[index]
    )
