"""How many attempt ends the coordinator answers per wake-up (see `Loop._coordinate`).

A performance policy, tested for what it decides rather than for speed: while the
run keeps the thread busy, up to `_ENDS_BUSY` ends per wake-up; once the thread was
seen idle while the coordinator waited (actions that sleep), at most `_ENDS_SPREAD`,
so that the next starts are spread over scheduler batches. Under a MockClock the
clock moves only while every task waits, so both cases are deterministic.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from helpers import run_mock

import dagtrio._runtime.loop as loop
from dagtrio import ActionRegistry, Coordinator, NodeSpec


def _starts_per_wake(sleep: float, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Nodes started by each dispatch of a run of 600 independent nodes, 64 at once."""
    registry = ActionRegistry()

    @registry.action()
    async def work(ctx: Any) -> None:
        if sleep:
            await trio.sleep(sleep)
        else:
            await trio.lowlevel.checkpoint()

    starts: list[int] = []
    dispatch = loop.Loop._dispatch

    def counting(self: Any) -> None:
        before = self._state.running
        dispatch(self)
        # An end frees a slot before the dispatch that answers it; count starts only.
        if self._state.running > before:
            starts.append(self._state.running - before)

    monkeypatch.setattr(loop.Loop, "_dispatch", counting)
    specs = [NodeSpec("work", id=f"n{i}") for i in range(600)]

    async def main() -> None:
        report = await Coordinator(registry, max_parallel=64).run(specs)
        assert report.success

    run_mock(main)
    assert sum(starts) == 600
    return starts


def test_a_busy_run_answers_many_ends_per_wake_up(monkeypatch: pytest.MonkeyPatch) -> None:
    starts = _starts_per_wake(0.0, monkeypatch)
    assert starts[0] == 64  # the first wave
    assert max(starts[1:]) == loop._ENDS_BUSY
    assert len(starts) <= 1 + 600 // loop._ENDS_BUSY + 2


def test_actions_that_wait_get_their_starts_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    starts = _starts_per_wake(0.001, monkeypatch)
    assert starts[0] == 64
    # The first wave's ends come after an idle millisecond: from then on, few per wake-up.
    assert max(starts[1:]) <= loop._ENDS_SPREAD
    assert len(starts) >= (600 - 64) // loop._ENDS_SPREAD
