"""A crew: the worker tasks of one branch under one cancel scope (see `Crew`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from outcome import Value

from .._state.node import Node

if TYPE_CHECKING:
    from .context import LiveCtx

__all__ = ["WORKER_NAME", "Crew", "Worker"]

#: what Trio would name the worker tasks by itself (`crews` checks it at import)
WORKER_NAME = "dagtrio._runtime.crews.Crews._work"


class Crew:
    """The worker tasks of one branch, in a nursery of their own under one cancel scope.

    A node needs a cancel scope (cancelling its branch, or everything at the end of a
    shutdown's grace, must stop it), but entering and leaving one per attempt costs
    Trio about as much as starting the worker task itself. `RunState` only ever
    cancels a whole branch's running nodes at once (`RunState.cancel_nodes`), so every
    running node of a branch shares its crew's scope instead. Cancelling it is for
    good: a branch is cancelled for good, and so is a run that stops (shutdown,
    fail_fast, its end); idle crews that the run retires leave `Run._crews` first,
    and an idle crew taken over by another branch leaves its old branch's entry.
    """

    __slots__ = (
        "branch",
        "idle",
        "nursery",
        "pooled",
        "running",
        "scope",
        "unsent",
        "waiting",
    )

    def __init__(self, branch: str) -> None:
        #: the branch it runs nodes of now (an idle crew may move to another)
        self.branch = branch
        #: in `Run._idle_crews`
        self.pooled = False
        self.scope = trio.CancelScope()
        self.nursery: trio.Nursery | None = None
        #: attempts started here whose end the coordinator has not heard of yet
        self.running = 0
        #: attempts to start once `serve` has opened the nursery
        self.waiting: list[LiveCtx] = []
        #: worker tasks parked between attempts, each waiting to be handed the next
        #: attempt's context (see `Crews._work`)
        self.idle: list[trio.lowlevel.Task] = []
        #: attempt ends that workers could not report before the crew was cancelled
        self.unsent: list[Node] = []

    def start(self, work: Worker, ctx: LiveCtx) -> None:
        """Run the attempt of ``ctx`` on a parked worker, else on a new one."""
        if self.idle:
            trio.lowlevel.reschedule(self.idle.pop(), Value(ctx))
        elif self.nursery is None:
            self.waiting.append(ctx)
        else:
            # An explicit name spares Trio working one out for every task.
            self.nursery.start_soon(work, self, ctx, name=WORKER_NAME)

    async def serve(self, work: Worker, inbox: trio.MemorySendChannel[Any]) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                # Not in this frame, which lives as long as the crew: its locals would
                # keep the first workers' contexts alive all that time.
                self._start_waiting(work)
                await trio.sleep_forever()
        # The crew was cancelled, not the run (that would have cancelled us here too):
        # its nodes are final, but the coordinator counts their slots until it hears.
        for message in self.unsent:
            await inbox.send(message)

    def _start_waiting(self, work: Worker) -> None:
        waiting, self.waiting = self.waiting, []
        for ctx in waiting:
            self.start(work, ctx)

    def report(self, inbox: trio.MemorySendChannel[Any], message: Node) -> None:
        """Report a cancelled attempt's end without a checkpoint (the worker is cancelled)."""
        try:
            inbox.send_nowait(message)
        except trio.WouldBlock:
            self.unsent.append(message)  # `serve` sends it once the workers are gone
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the run is over: nobody counts slots any more


Worker = Callable[[Crew, "LiveCtx"], Awaitable[None]]
