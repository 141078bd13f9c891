"""The DAG the steering crash tests kill and resume (also run as a script).

``python tests/steer_dag.py JOURNAL RUN_ID hold`` runs it with ``on_failure="hold"``:
``tool`` fails, and once the run is at rest it prints ``held tool`` and waits to be
killed. ``... JOURNAL RUN_ID rerun`` re-runs what failed of a finished run; ``slow``
prints ``running slow`` and never ends, for the test to kill it there. The
environment variable ``BROKEN`` lists the nodes that fail (comma-separated).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import trio

from dagtrio import ActionRegistry, Coordinator, NodeCtx, NodeSpec, RunIdle, SqliteJournal

SPECS = [
    NodeSpec("work", id="a"),
    NodeSpec("work", id="side", deps=["a"]),
    NodeSpec("work", id="tool", deps=["a"]),
    NodeSpec("work", id="slow", deps=["tool"], inputs={"hang": True}),
    NodeSpec("work", id="end", deps=["slow", "side"]),
]


def registry() -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def work(ctx: NodeCtx) -> Any:
        if ctx.node_id in os.environ.get("BROKEN", "").split(","):
            raise RuntimeError(f"{ctx.node_id} is broken")
        if ctx.inputs.get("hang") and os.environ.get("HANG"):
            print("running", ctx.node_id, flush=True)
            await trio.sleep_forever()
        await trio.sleep(0.001)
        return 1 + sum(ctx.upstream.values())

    return reg


async def hold(path: str, run_id: str) -> None:
    coordinator = Coordinator(registry(), on_failure="hold", journal=SqliteJournal(path))
    async with coordinator.open_run(SPECS, run_id=run_id) as run:
        async for event in run.events():
            if isinstance(event, RunIdle):
                print("held", *event.held, flush=True)
                await trio.sleep_forever()


async def rerun(path: str, run_id: str) -> None:
    await Coordinator(registry(), journal=SqliteJournal(path)).resume(run_id, rerun="failed")


if __name__ == "__main__":
    journal_path, run, mode = sys.argv[1:4]
    trio.run({"hold": hold, "rerun": rerun}[mode], journal_path, run)
