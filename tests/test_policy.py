"""Scheduling policy as properties: priority, critical-path order, resource limits.

The ready set is rebuilt from the run's own events (the one order in which the
coordinator applied everything): a node is ready once every dep's `NodeCompleted` has
been seen and until its `NodeStarted`. At every start, the node started must be the
best ready one by the policy; with resource limits, the amounts held (counted inside
the actions) never pass a limit and every node ends.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from helpers import run_mock
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNodes,
    CommandRejected,
    CommandRejectedError,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    InvalidGraphError,
    NodeAdded,
    NodeCompleted,
    NodeRetrying,
    NodeSpec,
    NodeStarted,
    NodeStatus,
)


def _registry(held: dict[str, int] | None = None, limits: dict[str, int] | None = None) -> Any:
    registry = ActionRegistry()
    peak: dict[str, int] = {}

    @registry.action()
    async def work(ctx: Any) -> None:
        uses = ctx.inputs.get("uses", {})
        if held is not None:
            for name, amount in uses.items():
                held[name] = held.get(name, 0) + amount
                peak[name] = max(peak.get(name, 0), held[name])
                assert limits is not None and held[name] <= limits[name], (name, held)
        try:
            await trio.sleep(ctx.inputs.get("t", 1))
            if ctx.attempt <= ctx.inputs.get("fail", 0):
                raise RuntimeError("fails, to be retried")
        finally:
            if held is not None:
                for name, amount in uses.items():
                    held[name] -= amount

    registry.peak = peak
    return registry


@st.composite
def graphs(draw: Any, *, max_nodes: int = 14) -> list[dict[str, Any]]:
    """Nodes as dicts: deps on earlier nodes, a priority, an estimate, a duration."""
    count = draw(st.integers(1, max_nodes))
    nodes = []
    for i in range(count):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        nodes.append(
            {
                "id": f"n{i}",
                "deps": [f"n{d}" for d in deps],
                "priority": draw(st.integers(-2, 2)),
                "estimate": float(draw(st.integers(0, 5))),
                "t": draw(st.sampled_from([0.5, 1.0, 2.0])),
            }
        )
    return nodes


def _specs(nodes: Iterable[dict[str, Any]], *, priority: bool, estimate: bool) -> list[NodeSpec]:
    return [
        NodeSpec(
            "work",
            id=node["id"],
            deps=tuple(node["deps"]),
            inputs={"t": node["t"]},
            priority=node["priority"] if priority else 0,
            estimate=node["estimate"] if estimate else None,
        )
        for node in nodes
    ]


class _Watcher:
    """Follows the events: the known graph, which nodes are ready and since when."""

    def __init__(self) -> None:
        self.specs: dict[str, NodeSpec] = {}
        self.done: set[str] = set()
        self.started: set[str] = set()
        self.ready: dict[str, int] = {}  # node -> when it became ready (event count)
        self.clock = 0
        self.starts: list[tuple[str, dict[str, int]]] = []  # (node, ready set then)
        #: at each start, the rank of the node started and of every node ready then
        self.ranks: list[dict[str, float]] = []
        #: when each node became ready (event count)
        self.became: dict[str, int] = {}

    def see(self, event: ExecutionEvent) -> None:
        self.clock += 1
        if isinstance(event, NodeAdded):
            self.specs[event.node.node] = event.spec
            self._check_ready(event.node.node)
        elif isinstance(event, NodeCompleted):
            self.done.add(event.node.node)
            for node_id, spec in self.specs.items():
                if event.node.node in spec.deps:
                    self._check_ready(node_id)
        elif isinstance(event, NodeRetrying):
            # Queued again (no retry delay): ready from now, with its rank of now.
            self.started.discard(event.node.node)
            self._check_ready(event.node.node)
        elif isinstance(event, NodeStarted):
            node_id = event.node.node
            self.ready.pop(node_id)  # it must have been ready
            self.starts.append((node_id, dict(self.ready)))
            self.started.add(node_id)

    def _check_ready(self, node_id: str) -> None:
        spec = self.specs[node_id]
        if node_id not in self.started and all(dep in self.done for dep in spec.deps):
            self.ready.setdefault(node_id, self.clock)

    def rank(self, node_id: str) -> float:
        """Longest remaining path (estimates summed) over the graph known now."""
        below = [self.rank(other) for other, spec in self.specs.items() if node_id in spec.deps]
        estimate = self.specs[node_id].estimate
        return (1.0 if estimate is None else estimate) + max(below, default=0.0)


@settings(max_examples=80, deadline=None)
@given(nodes=graphs(), max_parallel=st.integers(1, 3))
def test_the_highest_priority_ready_node_starts_first(
    nodes: list[dict[str, Any]], max_parallel: int
) -> None:
    specs = _specs(nodes, priority=True, estimate=False)
    coordinator = Coordinator(_registry(), max_parallel=max_parallel)

    async def main() -> tuple[_Watcher, Any]:
        return await _watch(coordinator, specs)

    watcher, report = run_mock(main)
    assert report.success
    for node, ready in watcher.starts:
        mine = watcher.specs[node].priority
        for other, since in ready.items():
            theirs = watcher.specs[other].priority
            assert theirs <= mine, (node, other)
            if theirs == mine:  # FIFO among equals: the one ready first goes first
                assert since >= _since(watcher, node), (node, other)


def _since(watcher: _Watcher, node: str) -> int:
    return watcher.became[node]


async def _watch(coordinator: Coordinator, specs: list[NodeSpec]) -> tuple[_Watcher, Any]:
    """Run ``specs`` and follow every event with a `_Watcher`."""
    watcher = _Watcher()
    async with coordinator.open_run(specs) as run:
        async for event in run.events():
            before = dict(watcher.ready)
            watcher.see(event)
            for node_id, since in watcher.ready.items():
                # A retried node's place among equals is not pinned here: a retry is
                # queued again through a timer whose moment no event shows.
                if node_id not in before and node_id not in watcher.became:
                    watcher.became[node_id] = since
            if isinstance(event, NodeStarted):
                # Ranks over the graph as known at this start.
                node, ready = watcher.starts[-1]
                watcher.ranks.append({other: watcher.rank(other) for other in [node, *ready]})
        report = await run.wait()
    return watcher, report


class _Planner(EventHook):
    """Grows the graph while it runs: each completion adds a chain of two under a node
    that has not started yet (the last such node of the graph), so the remaining paths
    of nodes waiting on it, ready ones among them, get longer meanwhile. A node that
    will fail its first attempt grows so as it starts: queued again, it must come back
    with its longer path."""

    def __init__(self, plan: list[float]) -> None:
        self.plan = list(plan)
        self.count = 0

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if not self.plan:
            return None
        if isinstance(event, NodeStarted) and event.attempt == 1:
            # Under a node that will fail and be queued again: the chain lengthens
            # the path of a running node.
            if ctx.graph.spec(event.node.node).inputs.get("fail"):
                return self._grow(event.node.node)
            return None
        if not isinstance(event, NodeCompleted):
            return None
        waiting = [
            node_id
            for node_id in ctx.graph
            if ctx.graph.status(node_id) in (NodeStatus.PENDING, NodeStatus.READY)
        ]
        if not waiting:
            return None
        return self._grow(waiting[-1])

    def _grow(self, parent: str) -> list[AddNodes]:
        estimate = self.plan.pop()
        self.count += 1

        first, second = f"g{self.count}a", f"g{self.count}b"
        return [
            AddNodes(
                [
                    NodeSpec("work", id=first, deps=(parent,), estimate=estimate),
                    NodeSpec("work", id=second, deps=(first,), estimate=1.0),
                ]
            )
        ]


@settings(max_examples=80, deadline=None)
@given(
    nodes=graphs(),
    max_parallel=st.integers(1, 3),
    plan=st.lists(st.sampled_from([0.0, 3.0, 8.0, 20.0]), max_size=6),
    failing=st.sets(st.integers(0, 3), max_size=2),
)
def test_critical_path_starts_the_longest_remaining_path_first(
    nodes: list[dict[str, Any]], max_parallel: int, plan: list[float], failing: set[int]
) -> None:
    specs = [
        attrs.evolve(spec, inputs={**spec.inputs, "fail": 1}, try_count=2) if i in failing else spec
        for i, spec in enumerate(_specs(nodes, priority=False, estimate=True))
    ]
    coordinator = Coordinator(
        _registry(), hooks=[_Planner(plan)], max_parallel=max_parallel, order="critical_path"
    )

    async def main() -> tuple[_Watcher, Any]:
        return await _watch(coordinator, specs)

    watcher, report = run_mock(main)
    assert report.success
    for (node, ready), ranks in zip(watcher.starts, watcher.ranks, strict=True):
        for other, since in ready.items():
            assert ranks[other] <= ranks[node], (node, other, ranks)
            if ranks[other] == ranks[node]:
                assert since >= _since(watcher, node), (node, other)


@settings(max_examples=60, deadline=None)
@given(
    nodes=graphs(max_nodes=16),
    uses=st.lists(
        st.dictionaries(st.sampled_from(["llm", "gpu"]), st.integers(1, 2), max_size=2),
        min_size=1,
        max_size=16,
    ),
    llm=st.integers(2, 3),
    max_parallel=st.integers(1, 4),
    order=st.sampled_from(["fifo", "critical_path"]),
)
def test_resource_limits_are_never_exceeded_and_never_deadlock(
    nodes: list[dict[str, Any]],
    uses: list[dict[str, int]],
    llm: int,
    max_parallel: int,
    order: Any,
) -> None:
    limits = {"llm": llm, "gpu": 2}
    held: dict[str, int] = {}
    registry = _registry(held, limits)
    specs = [
        NodeSpec(
            "work",
            id=node["id"],
            deps=tuple(node["deps"]),
            inputs={"t": node["t"], "uses": uses[i % len(uses)]},
            uses=uses[i % len(uses)],
            priority=node["priority"],
        )
        for i, node in enumerate(nodes)
    ]

    async def main() -> Any:
        return await Coordinator(
            registry, max_parallel=max_parallel, limits=limits, order=order
        ).run(specs)

    report = run_mock(main)  # a deadlock would be a TooSlowError here
    assert report.success
    assert all(record.status is NodeStatus.SUCCEEDED for record in report.nodes.values())
    assert all(amount == 0 for amount in held.values())
    for name, peak in registry.peak.items():
        assert peak <= limits[name]


def test_a_limited_resource_is_shared_as_far_as_it_goes() -> None:
    held: dict[str, int] = {}
    limits = {"llm": 2}
    registry = _registry(held, limits)
    specs = [
        NodeSpec("work", id=f"n{i}", inputs={"uses": {"llm": 1}}, uses={"llm": 1}) for i in range(6)
    ]

    async def main() -> Any:
        return await Coordinator(registry, max_parallel=10, limits=limits).run(specs)

    report = run_mock(main)
    assert report.success
    assert registry.peak == {"llm": 2}  # it went as far as the limit, not further


def test_uses_from_the_action_and_from_the_spec() -> None:
    registry = ActionRegistry()
    counts = {"now": 0, "peak": 0}

    @registry.action(uses={"gpu": 1})
    async def train(ctx: Any) -> None:
        counts["now"] += 1
        counts["peak"] = max(counts["peak"], counts["now"])
        await trio.sleep(1)
        counts["now"] -= 1

    specs = [NodeSpec("train", id=f"t{i}") for i in range(4)]
    specs.append(NodeSpec("train", id="free", uses={}))  # uses none: runs alongside

    async def main() -> Any:
        return await Coordinator(registry, limits={"gpu": 1}).run(specs)

    report = run_mock(main)
    assert report.success
    assert counts["peak"] == 2  # one on the gpu, and the one that uses none
    ends = sorted(report.nodes[f"t{i}"].finished_at for i in range(4))  # type: ignore[type-var]
    assert all(later - earlier == pytest.approx(1.0) for earlier, later in itertools.pairwise(ends))


@pytest.mark.parametrize(
    ("uses", "limits", "message"),
    [
        ({"gpu": 1}, {}, "uses 'gpu', which the coordinator has no limit for (limits: none)"),
        ({"gpu": 1}, {"llm": 2}, "no limit for (limits: llm)"),
        ({"gpu": 3}, {"gpu": 2}, "uses 3 of 'gpu', more than its limit of 2: it could never start"),
    ],
)
def test_a_use_no_limit_can_satisfy_is_refused_up_front_and_in_flight(
    uses: dict[str, int], limits: dict[str, int], message: str
) -> None:
    registry = _registry()
    bad = NodeSpec("work", id="bad", uses=uses)
    with pytest.raises(InvalidGraphError, match="node 'bad'") as raised:
        trio.run(Coordinator(registry, limits=limits).run, [NodeSpec("work", id="ok"), bad])
    assert message in str(raised.value)

    async def main() -> Any:
        async with Coordinator(registry, limits=limits).open_run(
            [NodeSpec("work", id="ok", inputs={"t": 1})]
        ) as run:
            events = run.events()
            with pytest.raises(CommandRejectedError, match=re.escape(message)):
                await run.submit(AddNodes([NodeSpec("work", id="fine"), bad]))
            seen = [event async for event in events]
            report = await run.wait()
        return seen, report

    events, report = run_mock(main)
    rejected = [event for event in events if isinstance(event, CommandRejected)]
    assert len(rejected) == 1 and message in rejected[0].reason
    assert set(report.nodes) == {"ok"}  # the whole batch was refused


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"order": "lifo"}, ValueError, "order must be 'fifo' or 'critical_path'"),
        ({"limits": {"gpu": 0}}, ValueError, "limits['gpu'] must be"),
        ({"limits": {"": 1}}, ValueError, "resource names must be non-empty strings"),
        ({"limits": [("gpu", 1)]}, TypeError, "limits must be a mapping"),
    ],
)
def test_bad_policy_options_are_refused(kwargs: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Coordinator(ActionRegistry(), **kwargs)


def test_critical_path_uses_the_journals_past_durations(tmp_path: Any) -> None:
    from dagtrio import SqliteJournal

    registry = ActionRegistry()
    order: list[str] = []

    @registry.action()
    async def slow(ctx: Any) -> None:
        order.append(ctx.node_id)
        await trio.sleep(5)

    @registry.action()
    async def quick(ctx: Any) -> None:
        order.append(ctx.node_id)
        await trio.sleep(1)

    journal = SqliteJournal(tmp_path / "j.db")

    async def main() -> None:
        first = Coordinator(registry, journal=journal)
        await first.run([NodeSpec("slow", id="s"), NodeSpec("quick", id="q")], run_id="one")
        assert journal.mean_durations() == {"slow": 5.0, "quick": 1.0}
        order.clear()
        # Each a chain of two; by estimate, the quick chain is shorter (2 s against 10 s).
        second = Coordinator(registry, journal=journal, max_parallel=1, order="critical_path")
        await second.run(
            [
                NodeSpec("quick", id="q1"),
                NodeSpec("quick", id="q2", deps=("q1",)),
                NodeSpec("slow", id="s1"),
                NodeSpec("slow", id="s2", deps=("s1",)),
            ],
            run_id="two",
        )

    # The journal writes in a thread: the clock may jump only once every task has
    # waited a while for real, or it would jump past the journal's writes.
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.1))
    assert order == ["s1", "s2", "q1", "q2"]
