"""Hooks for tests: watch a run's events, optionally slowly."""

from __future__ import annotations

import trio

from .._hooks.hook import EventHook, HookContext
from .._model.events import ExecutionEvent

__all__ = ["RecordingHook"]


class RecordingHook(EventHook):
    """A hook that records every event it sees, optionally taking its time over each.

    ``latency`` seconds of ``trio.sleep`` per event make a slow hook, to test
    backpressure. ``on_start`` / ``on_complete`` calls are counted.
    """

    def __init__(self, latency: float = 0.0, name: str | None = None) -> None:
        self.latency = latency
        self.events: list[ExecutionEvent] = []
        self.started = 0
        self.completed: list[bool] = []
        if name is not None:
            self.name = name

    async def on_start(self, ctx: HookContext) -> None:
        self.started += 1

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
        self.events.append(event)
        if self.latency:
            await trio.sleep(self.latency)

    async def on_complete(self, ctx: HookContext, success: bool) -> None:
        self.completed.append(success)
