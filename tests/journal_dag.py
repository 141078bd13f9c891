"""The DAG the journal's crash tests run, killed and resumed (also run as a script).

``python tests/journal_dag.py JOURNAL RUN_ID`` runs it with a journal and prints
``done <node> <output>`` for every node a hook saw succeed, so the test knows what
was reported done before it kills the process.
"""

from __future__ import annotations

import sys
from typing import Any

import trio

from dagtrio import (
    ActionRegistry,
    AddNodes,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    SqliteJournal,
)

#: node ids whose action ran in this process
RAN: list[str] = []


def registry() -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def work(ctx: NodeCtx) -> Any:
        RAN.append(ctx.node_id)
        await trio.sleep(0.001 * (hash(ctx.node_id) % 3))
        return {"n": 1 + sum(out["n"] for out in ctx.upstream.values()), "id": ctx.node_id}

    return reg


class Grow(EventHook):
    """Adds two children (explicit ids: idempotent) to every node whose id ends in 0."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if not isinstance(event, NodeCompleted):
            return None
        node = event.node.node
        if self.echo:
            print("done", node, event.outcome.outputs["n"], flush=True)
        if node.endswith("0") and node.count("/") < 2:
            return [AddNodes([NodeSpec("work", id=f"{node}/{i}", deps=[node]) for i in range(2)])]
        return None


def specs(n: int = 120) -> list[NodeSpec]:
    out = []
    for i in range(n):
        deps = [f"n{j}" for j in (i - 1, i - 7) if j >= 0]
        out.append(NodeSpec("work", id=f"n{i}", deps=deps))
    return out


def coordinator(journal: SqliteJournal | None, echo: bool = False) -> Coordinator:
    return Coordinator(registry(), [Grow(echo)], journal=journal, max_parallel=8)


if __name__ == "__main__":
    path, run_id = sys.argv[1], sys.argv[2]
    trio.run(lambda: coordinator(SqliteJournal(path), echo=True).run(specs(), run_id=run_id))
    print("finished", flush=True)
