"""What the hook pipeline tells the coordinator, and how the coordinator answers.

The coordinator task is the only receiver of one bounded inbox (see `_runtime.messages`
for the rest of what arrives there). The pipeline's stages send these; the coordinator
never sends to a stage while it might be waiting on it, which is what keeps the message
flow free of cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .._model.commands import ExecutorCommand

__all__ = ["EventsDone", "HookCommands", "HookCrashed", "Reply"]


def _refuse_abort(raise_cancel: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _allow_abort(raise_cancel: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.SUCCEEDED


class Reply:
    """The coordinator's answer to one message: set once, awaited by one task.

    What a ``trio.Event`` does for this, for a third of the cost: a task that submits
    commands one by one (an approval per branch) spends most of its time in this
    round trip, and an Event's wait under a shielding cancel scope costs twice the
    rest of it.
    """

    __slots__ = ("_task", "done")

    def __init__(self) -> None:
        self.done = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        self.done = True
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def wait(self) -> None:
        """Wait for `set`; cancellable (the message may still take effect)."""
        if self.done:
            await trio.lowlevel.checkpoint()
            return
        self._task = trio.lowlevel.current_task()
        try:
            await trio.lowlevel.wait_task_rescheduled(_allow_abort)
        finally:
            self._task = None

    async def wait_uncancellable(self) -> None:
        """Wait for `set`, even when cancelled meanwhile (the cancellation is delivered
        at the caller's next checkpoint): the caller must hear what happened. Only for
        a message the coordinator has taken or will answer when the run ends."""
        if self.done:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)


class HookCommands:
    """Commands a hook returned, to apply in order; ``applied`` is set once they were."""

    __slots__ = ("applied", "commands", "hook")

    def __init__(self, hook: str, commands: Sequence[ExecutorCommand], applied: Reply) -> None:
        self.hook = hook
        self.commands = commands
        self.applied = applied


class HookCrashed:
    """A hook raised; the coordinator applies the ``hook_errors`` policy.

    ``echo`` marks a crash while handling a `HookFailed` event: announcing it with yet
    another `HookFailed` could feed a hook that always raises its own failures forever.
    """

    __slots__ = ("echo", "error", "hook")

    def __init__(self, hook: str, error: BaseException, echo: bool = False) -> None:
        self.hook = hook
        self.error = error
        self.echo = echo


class EventsDone:
    """``count`` more events have passed every hook and reader."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count
