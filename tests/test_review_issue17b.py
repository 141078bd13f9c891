"""Review of issue 17's user-facing features: failing tests for the bugs found."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from dagtrio import ActionRegistry, CancelBranch, CommandRejected, NodeSpec, PauseBranch
from dagtrio.testing import HookSchedule, run_graph

REG = ActionRegistry()


@REG.action()
async def wait(ctx: Any) -> int:
    await trio.sleep(60)
    return 1


@pytest.mark.parametrize(
    ("paused", "cancelled"),
    [("a", "a"), ("a/b", "a")],  # the branch itself, or one above it
    ids=["same-branch", "branch-above"],
)
def test_hook_schedule_resumes_at_rest_only_branches_not_cancelled(
    paused: str, cancelled: str
) -> None:
    # The schedule issues no resume of its own: every ResumeBranch is the hook's, at
    # rest ("the hook resumes every branch it paused"). A branch it paused and that was
    # then cancelled (itself or a branch above it) cannot be resumed: the hook's own
    # command is rejected, so `run_graph(..., rejected=0)` fails on a schedule that
    # did nothing wrong, and a test must allow every rejection, hiding real ones.
    specs = [
        NodeSpec("wait", id="x", branch=paused),
        NodeSpec("wait", id="y", branch="c"),
        NodeSpec("wait", id="y2", deps=["y"], branch="c"),  # parked: the run comes to rest
    ]
    schedule = HookSchedule(
        ((0, PauseBranch(paused)), (0, PauseBranch("c")), (1, CancelBranch(cancelled)))
    )
    run = run_graph(REG, specs, hooks=[schedule.hook()], check=False)
    assert run.report.nodes["y2"].status.value == "succeeded"  # "c" was resumed
    rejected = [e for e in run.events if isinstance(e, CommandRejected)]
    assert rejected == [], [(e.command, e.reason) for e in rejected]
