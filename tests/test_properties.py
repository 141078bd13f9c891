"""Property tests for DESIGN.md §2: scheduling, growth, hooks, channels and memory.

Each example is a whole run on a MockClock: a generated DAG whose actions sleep and fail
on a plan, hooks that grow the graph (some batches deliberately invalid) and take their
time, readers fast and slow, and every capacity from 0 up. Afterwards the run is checked
against a model computed from the plan, and against the lifecycle rules.
"""

from __future__ import annotations

from typing import Any

import trio
from helpers import Probe, run_mock, work_registry
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio import (
    AddNode,
    AddNodes,
    CommandRejected,
    Coordinator,
    EventHook,
    ExecutionEvent,
    NodeCompleted,
    NodeSpec,
    NodeStatus,
    RunReport,
)
from dagtrio.testing import RecordingHook, check_run, dags

DELAYS = [0, 0, 1, 5]


@st.composite
def node_specs(draw: st.DrawFn, node_id: str, deps: list[str]) -> NodeSpec:
    return NodeSpec(
        "work",
        id=node_id,
        deps=deps,
        inputs={"delay": draw(st.sampled_from(DELAYS)), "fail": draw(st.integers(0, 2))},
        try_count=draw(st.integers(1, 3)),
        retry_delay=draw(st.sampled_from([0.0, 0.0, 2.0])),
    )


@st.composite
def growth_batches(draw: st.DrawFn, parent: str, known: list[str]) -> dict[str, Any]:
    """Children added when ``parent`` completes: deps on the parent, on other nodes of
    the batch, on any initial node; ``poison`` batches name a missing dep and must be
    rejected whole."""
    size = draw(st.integers(1, 3))
    specs: list[NodeSpec] = []
    for k in range(size):
        deps = [parent]
        if k and draw(st.booleans()):
            deps.append(specs[draw(st.integers(0, k - 1))].id)  # type: ignore[arg-type]
        if known and draw(st.booleans()):
            deps.append(draw(st.sampled_from(known)))
        specs.append(draw(node_specs(f"{parent}.{k}", deps)))
    poison = draw(st.integers(0, 5)) == 0
    if poison:
        victim = draw(st.integers(0, size - 1))
        specs[victim] = NodeSpec("work", id=specs[victim].id, deps=[parent, "no-such-node"])
    return {"specs": specs, "poison": poison, "single": size == 1 and draw(st.booleans())}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 9))
    specs = []
    for i in range(count):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        specs.append(draw(node_specs(f"n{i}", [f"n{d}" for d in deps])))
    known = [spec.id for spec in specs]
    plan: dict[str, dict[str, Any]] = {}
    for parent in draw(st.lists(st.sampled_from(known), unique=True, max_size=3)):
        plan[parent] = draw(growth_batches(parent, known))
        # Second-level growth: a child that grows children of its own.
        child = plan[parent]["specs"][0]
        if not plan[parent]["poison"] and draw(st.booleans()):
            plan[child.id] = draw(growth_batches(child.id, known))
    return {
        "specs": draw(st.permutations(specs)),
        "plan": plan,
        "max_parallel": draw(st.integers(1, 4)),
        "event_capacity": draw(st.integers(0, 3)),
        "command_capacity": draw(st.integers(0, 3)),
        "hook_latencies": draw(st.lists(st.sampled_from([0, 0, 0.5, 3]), max_size=2)),
        "grower_latency": draw(st.sampled_from([0, 0.5, 3])),
        "reader": draw(st.sampled_from([None, 0, 0.5, 4])),
    }


class GrowthHook(RecordingHook):
    """Adds the planned children when a planned parent completes."""

    def __init__(self, plan: dict[str, dict[str, Any]], latency: float) -> None:
        super().__init__(latency, name="grower")
        self.plan = plan

    async def handle(self, ctx: Any, event: ExecutionEvent) -> Any:
        await super().handle(ctx, event)
        if isinstance(event, NodeCompleted) and event.node.node in self.plan:
            batch = self.plan[event.node.node]
            if batch["single"]:
                return AddNode(batch["specs"][0])
            return [AddNodes(batch["specs"])]
        return None


def expected_outcome(
    report: RunReport, plan_inputs: dict[str, tuple[int, int]]
) -> dict[str, tuple[NodeStatus, int, Any]]:
    """What each node of the final graph must have ended as, from its spec alone.

    ``plan_inputs`` maps each node to (failing attempts planned, try_count)."""
    memo: dict[str, tuple[NodeStatus, int, Any]] = {}

    def outcome(node_id: str) -> tuple[NodeStatus, int, Any]:
        if node_id not in memo:
            record = report.nodes[node_id]
            spec_fail, try_count = plan_inputs[node_id]
            deps = [outcome(dep) for dep in record.deps]
            if any(dep[0] is not NodeStatus.SUCCEEDED for dep in deps):
                memo[node_id] = (NodeStatus.SKIPPED, 0, None)
            elif spec_fail < try_count:
                memo[node_id] = (NodeStatus.SUCCEEDED, spec_fail + 1, 1 + sum(d[2] for d in deps))
            else:
                memo[node_id] = (NodeStatus.FAILED, try_count, None)
        return memo[node_id]

    return {node_id: outcome(node_id) for node_id in report.nodes}


@settings(max_examples=150)
@given(scenarios())
def test_generated_runs_hold_every_scheduling_growth_and_hook_rule(
    scenario: dict[str, Any],
) -> None:
    probe = Probe()
    grower = GrowthHook(scenario["plan"], scenario["grower_latency"])
    watchers = [RecordingHook(latency) for latency in scenario["hook_latencies"]]
    coordinator = Coordinator(
        work_registry(),
        [grower, *watchers],
        max_parallel=scenario["max_parallel"],
        event_capacity=scenario["event_capacity"],
        command_capacity=scenario["command_capacity"],
        app_data=probe,
    )
    seen_by_reader: list[ExecutionEvent] = []

    async def main() -> RunReport:
        async with coordinator.open_run(scenario["specs"]) as run:
            if scenario["reader"] is not None:
                async for event in run.events():
                    seen_by_reader.append(event)
                    if scenario["reader"]:
                        await trio.sleep(scenario["reader"])
        return await run.wait()

    report = run_mock(main)

    every_spec = list(scenario["specs"]) + [
        spec for batch in scenario["plan"].values() for spec in batch["specs"]
    ]
    plan_inputs = {spec.id: (spec.inputs.get("fail", 0), spec.try_count) for spec in every_spec}
    try_counts = {spec.id: spec.try_count for spec in every_spec}

    # Scheduling: nothing ran twice at once, before its deps, or beyond max_parallel.
    assert probe.violations == []
    assert probe.peak <= scenario["max_parallel"]
    check_run(
        report,
        grower.events,
        try_counts=try_counts,
        rejected=lambda e: "'no-such-node' is not in the graph" in e.reason,
    )

    # Growth: exactly the planned children of succeeded parents joined, poison batches
    # were rejected whole, and every node ended as its spec says it must.
    expected_nodes = {spec.id for spec in scenario["specs"]}
    changed = True
    while changed:
        changed = False
        for parent, batch in scenario["plan"].items():
            if parent in expected_nodes and report.nodes[parent].status is NodeStatus.SUCCEEDED:
                ids = {spec.id for spec in batch["specs"]}
                if batch["poison"]:
                    assert not ids & set(report.nodes), f"poison batch of {parent} half-applied"
                elif not ids <= expected_nodes:
                    expected_nodes |= ids
                    changed = True
    rejected = sum(
        1
        for parent, batch in scenario["plan"].items()
        if batch["poison"]
        and parent in report.nodes
        and report.nodes[parent].status is NodeStatus.SUCCEEDED
    )
    assert set(report.nodes) == expected_nodes
    assert sum(isinstance(e, CommandRejected) for e in grower.events) == rejected
    for node_id, (status, attempts, outputs) in expected_outcome(report, plan_inputs).items():
        record = report.nodes[node_id]
        assert (record.status, record.attempts) == (status, attempts), node_id
        assert record.outputs == outputs, node_id
    assert report.success == all(
        record.status is NodeStatus.SUCCEEDED for record in report.nodes.values()
    )

    # Hooks: each saw every event once, in one order; readers see a suffix of it.
    for watcher in watchers:
        assert watcher.events == grower.events
    for hook in [grower, *watchers]:
        assert hook.started == 1
        assert hook.completed == [report.success]
    if scenario["reader"] is not None:
        # Subscribed first thing in the body: nothing of the run was missed.
        assert seen_by_reader == grower.events


@settings(max_examples=60)
@given(dags(action="work", max_nodes=15), st.data())
def test_a_node_starts_the_moment_its_own_deps_succeed(specs: list[NodeSpec], data: Any) -> None:
    """No superstep barrier: with slots to spare, each node starts exactly when its
    last dep finishes, however slow its unrelated siblings are."""
    delays = {spec.id: data.draw(st.sampled_from([1, 2, 7, 30])) for spec in specs}
    specs = [
        NodeSpec("work", id=spec.id, deps=spec.deps, inputs={"delay": delays[spec.id]})
        for spec in specs
    ]
    probe = Probe()

    async def main() -> RunReport:
        return await Coordinator(work_registry(), max_parallel=len(specs), app_data=probe).run(
            specs
        )

    report = run_mock(main)
    assert report.success
    for spec in specs:
        record = report.nodes[spec.id]
        ready_at = max((report.nodes[d].finished_at for d in spec.deps), default=report.started_at)
        assert record.started_at is not None and ready_at is not None
        assert abs(record.started_at - ready_at) < 1e-6, spec.id


@settings(max_examples=60)
@given(
    dags(action="work", max_nodes=12),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(0, 2),
    st.sampled_from([0, 1, 10]),
)
def test_slow_hooks_and_tiny_channels_never_deadlock(
    specs: list[NodeSpec],
    max_parallel: int,
    event_capacity: int,
    command_capacity: int,
    latency: float,
) -> None:
    """Every hook adds a node per completion (a feedback loop through the pipeline) and
    sleeps; capacities 0..2. The run must still end with every node done."""
    budget = {"left": 8}

    class Feedback(EventHook):
        async def handle(self, ctx: Any, event: ExecutionEvent) -> Any:
            await trio.sleep(latency)
            if isinstance(event, NodeCompleted) and budget["left"] > 0:
                budget["left"] -= 1
                return [AddNode(NodeSpec("work", deps=[event.node.node]))]
            return None

    probe = Probe()

    async def main() -> RunReport:
        return await Coordinator(
            work_registry(),
            [Feedback(), Feedback()],
            max_parallel=max_parallel,
            event_capacity=event_capacity,
            command_capacity=command_capacity,
            app_data=probe,
        ).run(specs)

    report = run_mock(main)
    assert report.success
    assert len(report.nodes) == len(specs) + 8 - budget["left"]
    assert probe.peak <= max_parallel


@settings(max_examples=25)
@given(st.integers(0, 3), st.integers(1, 3), st.sampled_from([0, 1]))
def test_events_in_flight_stay_bounded_however_many_events_a_run_makes(
    event_capacity: int, max_parallel: int, latency: float
) -> None:
    """Memory grows with nodes, not events: a chain that grows one node per completion
    for a long time never has more than a fixed number of events in flight."""
    length = 120
    peak = {"in_flight": 0, "outbox": 0}
    holder: dict[str, Any] = {}

    class Chain(EventHook):
        async def handle(self, ctx: Any, event: ExecutionEvent) -> Any:
            stats = holder["run"].statistics()
            peak["in_flight"] = max(peak["in_flight"], stats.events_in_flight)
            peak["outbox"] = max(peak["outbox"], stats.outbox)
            await trio.sleep(latency)
            if isinstance(event, NodeCompleted):
                index = int(event.node.node[1:])
                if index + 1 < length:
                    return AddNode(NodeSpec("noop", id=f"c{index + 1}", deps=[event.node.node]))
            return None

    async def main() -> RunReport:
        coordinator = Coordinator(
            work_registry(), [Chain()], max_parallel=max_parallel, event_capacity=event_capacity
        )
        async with coordinator.open_run([NodeSpec("noop", id="c0")]) as run:
            holder["run"] = run
        return await run.wait()

    report = run_mock(main)
    assert report.success and len(report.nodes) == length
    # One node at a time, three events each (added, started, completed): the bound
    # depends on the capacity, never on the 360 events the run produced.
    bound = max(1, event_capacity) + 3
    assert peak["in_flight"] <= bound
    assert peak["outbox"] <= bound
