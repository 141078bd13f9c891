"""Branch commands at scale: the approval pattern, one branch per tool call.

An agent gives every tool call a branch of its own, pauses it for a person, adds the
call's node, and later resumes (approves) or cancels (rejects) it: one command per
branch, one at a time, while the rest of the run goes on. Each command must cost what
its branch holds, not what the graph holds, or the pattern is quadratic.

Run: ``python benchmarks/bench_branches.py [N ...]`` (default 100000). For each N, two
runs, every command sent through ``run.submit`` one at a time, as an application does:

- ``approve``: N ``PauseBranch`` (``main/t0``, ``main/t1``, …), one ``AddNodes`` putting
  a node on each (all held), N ``ResumeBranch`` (each node then runs), and N
  ``CancelBranch`` of the same, now finished, branches;
- ``reject``: the same pauses and nodes, then N ``CancelBranch`` of branches whose
  node is still held.

A node on a branch of its own keeps the run alive until the end. The figures are wall
time on this machine: the columns, then the time of all commands and the mean per
command. Compare across N (a constant cost per command is a flat line), and against
the same script run on an older dagtrio.
"""

from __future__ import annotations

import functools
import sys
import time
from typing import Any

import trio

from dagtrio import (
    ActionRegistry,
    AddNodes,
    CancelBranch,
    Coordinator,
    NodeCtx,
    NodeSpec,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
)


async def scenario(n: int, *, approve: bool) -> dict[str, float]:
    """One run: ``n`` branches paused, given a node each, then (``approve``) resumed
    and cancelled, or (not ``approve``) cancelled with their node still held; every
    command one at a time. Returns the seconds each phase took."""
    registry = ActionRegistry()
    gate = trio.Event()

    @registry.action()
    async def noop(ctx: NodeCtx) -> None:
        await trio.lowlevel.checkpoint()

    @registry.action()
    async def hold(ctx: NodeCtx) -> None:
        await gate.wait()

    times: dict[str, float] = {}
    coordinator = Coordinator(registry, max_parallel=64)
    branches = [f"main/t{i}" for i in range(n)]
    async with coordinator.open_run([NodeSpec("hold", id="gate", branch="keepalive")]) as run:

        async def phase(name: str, commands: list[Any]) -> None:
            start = time.perf_counter()
            for command in commands:
                await run.submit(command)
            times[name] = time.perf_counter() - start

        await phase("pause", [PauseBranch(branch) for branch in branches])
        specs = [NodeSpec("noop", id=f"t{i}", branch=branch) for i, branch in enumerate(branches)]
        await phase("add", [AddNodes(specs)])
        if approve:
            await phase("resume", [ResumeBranch(branch) for branch in branches])
        await phase("cancel", [CancelBranch(branch) for branch in branches])
        gate.set()
    counts = run.report().counts()
    done = NodeStatus.SUCCEEDED if approve else NodeStatus.CANCELLED
    assert counts.get(done, 0) == n + (done is NodeStatus.SUCCEEDED), counts
    return times


def main(argv: list[str]) -> None:
    sizes = [int(arg) for arg in argv] or [100_000]
    header = ("pause", "add", "resume", "cancel")
    print(f"{'scenario':<8} {'branches':>9} " + " ".join(f"{h:>8}" for h in header), end="")
    print(f" {'commands':>9} {'per cmd':>8}")
    for n in sizes:
        for approve in (True, False):
            times = trio.run(functools.partial(scenario, n, approve=approve))
            cells = " ".join(f"{times[k]:7.2f}s" if k in times else f"{'-':>8}" for k in header)
            commands = sum(times[k] for k in header if k in times)
            count = n * (3 if approve else 2) + 1
            name = "approve" if approve else "reject"
            print(f"{name:<8} {n:>9} {cells} {commands:8.2f}s {commands / count * 1e6:6.1f}us")


if __name__ == "__main__":
    main(sys.argv[1:])
