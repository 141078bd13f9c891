"""The DAG the journal's crash tests run, killed and resumed (also run as a script).

``python tests/journal_dag.py JOURNAL RUN_ID`` runs it with a journal and prints
``done <node> <output>`` for every node a hook saw succeed, so the test knows what
was reported done before it kills the process. ``... JOURNAL RUN_ID resume`` resumes
the run instead and prints ``ran <node>`` for every action it ran, then ``finished``,
or ``refused <message>`` if the journal would not let it resume. ``... JOURNAL RUN_ID
hold`` starts a run whose one node never ends, prints ``holding`` once it runs, and
waits to be killed.
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
    JournalError,
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


def _resume(path: str, run_id: str) -> None:
    try:
        trio.run(lambda: coordinator(SqliteJournal(path)).resume(run_id))
    except JournalError as exc:
        print("refused", exc, flush=True)
        return
    for node in RAN:
        print("ran", node, flush=True)
    print("finished", flush=True)


def _hold(path: str, run_id: str) -> None:
    reg = ActionRegistry()

    @reg.action()
    async def forever(ctx: NodeCtx) -> None:
        print("holding", flush=True)
        await trio.sleep_forever()

    coord = Coordinator(reg, journal=SqliteJournal(path))
    trio.run(lambda: coord.run([NodeSpec("forever", id="f")], run_id=run_id))


if __name__ == "__main__":
    path, run_id = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "run"
    if mode == "resume":
        _resume(path, run_id)
    elif mode == "hold":
        _hold(path, run_id)
    else:
        trio.run(lambda: coordinator(SqliteJournal(path), echo=True).run(specs(), run_id=run_id))
        print("finished", flush=True)
