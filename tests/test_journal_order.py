"""The journal's ordering guarantee, as a property: whatever a hook or a reader sees is
already committed, for any graph, growth, channel capacity, parallelism and hook latency.

Each check reads the file through a connection of its own, which sees committed
transactions only (SQLite WAL readers never see a writer's open transaction).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNodes,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    NodeAdded,
    NodeCompleted,
    NodeCtx,
    NodeFailed,
    NodeSpec,
    SqliteJournal,
)
from dagtrio.testing import dags


class Committed:
    """Reads what the journal has committed for one run, from a separate connection."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.db = sqlite3.connect(path)
        self.run_id = run_id

    def added(self) -> set[str]:
        rows = self.db.execute(
            "SELECT data FROM records WHERE run_id = ? AND kind = 'add'", (self.run_id,)
        )
        return {spec["id"] for (data,) in rows for spec in json.loads(data)["specs"]}

    def outcome(self, node: str) -> tuple[str, Any] | None:
        row = self.db.execute(
            "SELECT status, data FROM records WHERE run_id = ? AND node = ?"
            " AND kind IN ('outcome', 'cached')",
            (self.run_id, node),
        ).fetchone()
        if row is None:
            return None
        return row[0], (json.loads(row[1]) if row[1] is not None else None)

    def check(self, event: ExecutionEvent) -> None:
        if isinstance(event, NodeAdded):
            assert event.node.node in self.added(), f"{event.node.node}: added, not committed"
        elif isinstance(event, NodeCompleted):
            assert self.outcome(event.node.node) == ("succeeded", event.outcome.outputs), (
                f"{event.node.node}: completed, not committed"
            )
        elif isinstance(event, NodeFailed):
            outcome = self.outcome(event.node.node)
            assert outcome is not None and outcome[0] == "failed"


def registry() -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action
    async def work(ctx: NodeCtx) -> int:
        await trio.sleep(ctx.inputs.get("delay", 0))
        if ctx.inputs.get("fail"):
            raise RuntimeError("planned failure")
        return 1 + sum(ctx.upstream.values())

    return reg


class CheckAndGrow(EventHook):
    """Checks every event against the file, then (maybe) adds children to a node."""

    def __init__(self, committed: Committed, latency: float, grow: frozenset[str]) -> None:
        self.committed = committed
        self.latency = latency
        self.grow = grow
        self.seen = 0

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        self.committed.check(event)
        self.seen += 1
        if self.latency:
            await trio.sleep(self.latency)
        if isinstance(event, NodeCompleted) and event.node.node in self.grow:
            node = event.node.node
            return [AddNodes([NodeSpec("work", id=f"{node}+{i}", deps=[node]) for i in range(2)])]
        return None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=dags(
        action="work",
        max_nodes=25,
        inputs=st.fixed_dictionaries(
            {},
            optional={
                "delay": st.sampled_from([0, 0.001, 0.01]),
                "fail": st.booleans(),
            },
        ),
    ),
    capacity=st.sampled_from([0, 1, 3, 100]),
    max_parallel=st.integers(1, 6),
    latency=st.sampled_from([0.0, 0.0005, 0.005]),
    grow=st.sets(st.integers(0, 24), max_size=5),
    reader=st.booleans(),
)
def test_hooks_and_readers_see_only_committed_records(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[NodeSpec],
    capacity: int,
    max_parallel: int,
    latency: float,
    grow: set[int],
    reader: bool,
) -> None:
    path = tmp_path_factory.mktemp("order") / "j.db"
    committed = Committed(path, "r")
    hook = CheckAndGrow(committed, latency, frozenset(f"n{i}" for i in grow))
    coordinator = Coordinator(
        registry(),
        [hook],
        journal=SqliteJournal(path),
        event_capacity=capacity,
        command_capacity=capacity,
        max_parallel=max_parallel,
    )
    read: list[ExecutionEvent] = []

    async def main() -> None:
        async with coordinator.open_run(specs, run_id="r") as run:
            if reader:
                async for event in run.events():
                    committed.check(event)
                    read.append(event)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    try:
        assert hook.seen > 0 or not specs
        assert read or not reader or not specs
        # And the end is committed too: the file's report is the run's.
        journal = SqliteJournal(path)
        stored = journal.report("r")
        assert all(rec.status.is_final for rec in stored.nodes.values())
        journal.close()
    finally:
        committed.db.close()
