"""Where attempts run: crews of worker tasks, one per busy branch, and retry timers."""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from .._hooks.messages import Reply
from .._model.spec import NodeCtx
from .._state.node import CANCELLED_ATTEMPT, Node
from .base import RunData, holds_cancellation
from .crew import WORKER_NAME, Crew
from .messages import (
    Progress,
    RetryDue,
)

__all__ = ["Crews"]

logger = logging.getLogger("dagtrio")


class Crews(RunData):
    """Where attempts run: crews of worker tasks, one per busy branch, and retry timers."""

    def _new_crew(self, branch: str) -> Crew:
        crews = self._crews
        pool = self._idle_crews
        while pool:
            crew = pool.popleft()
            crew.pooled = False
            if crew.running or crew.scope.cancel_called or crews.get(crew.branch) is not crew:
                continue  # busy again, cancelled with its branch, or retired
            # Idle, so nothing runs under its scope: it may serve another branch.
            del crews[crew.branch]
            crew.branch = branch
            crews[branch] = crew
            return crew
        if len(crews) >= 2 * self._max_parallel:
            # At most max_parallel crews can be busy: retire the idle ones, so that a run
            # with many short-lived branches does not keep a task alive for each.
            for name, idle in [item for item in crews.items() if not item[1].running]:
                idle.scope.cancel()
                del crews[name]
        crew = crews[branch] = Crew(branch)
        assert self._nursery is not None
        self._nursery.start_soon(
            crew.serve, self._work, self._inbox_send, name=f"dagtrio crew {branch!r}"
        )
        return crew

    def _retry_later(self, node: Node, delay: float) -> trio.CancelScope:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._nursery.start_soon(self._retry_timer, node, scope, delay)
        return scope

    async def _retry_timer(self, node: Node, scope: trio.CancelScope, delay: float) -> None:
        with scope:
            await trio.sleep(delay)
        if not scope.cancelled_caught:
            await self._inbox_send.send(RetryDue(node))

    async def _send_progress(self, node_id: str, attempt: int, payload: Any) -> None:
        """``ctx.emit``: hand the coordinator an attempt's progress and wait for room."""
        if not (self._hooks or self._readers or self._taps):
            await trio.lowlevel.checkpoint()  # nobody listens: nothing to wait for
            return
        reply = Reply()
        try:
            await self._inbox_send.send(Progress(node_id, attempt, payload, reply))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the run is over; so is the attempt, in a moment
        await reply.wait()

    async def _work(self, node: Node, crew: Crew, ctx: NodeCtx) -> None:
        output: Any = None
        error: BaseException | str | None = None
        timeout = node.spec.timeout
        try:
            if timeout is None:
                output = await node.call(ctx)
            else:
                with trio.move_on_after(timeout) as limit:
                    output = await node.call(ctx)
                if limit.cancelled_caught:
                    # Say what really happened to the work (Python cannot stop a thread).
                    error = (
                        f"timed out after {timeout:g}s (attempt {ctx.attempt})"
                        + _AFTER[self._state.placement.ending(node)]
                    )
        except Exception as exc:
            # Kept whole until the coordinator has formatted its traceback.
            error = exc
        except BaseException as exc:
            if not holds_cancellation(exc):
                raise  # KeyboardInterrupt, SystemExit: not this node's business
            if trio.current_effective_deadline() != -math.inf:
                # A Cancelled that no scope of ours asked for: re-raised by hand out of
                # the scope it belonged to. Taken for ours, it would end the crew's
                # other nodes as cancelled and then crash the run; it is this attempt's
                # failure.
                error = exc
            else:
                # The crew was cancelled (its branch, a shutdown) or the whole run was;
                # an action with a nursery of its own raises a group holding Cancelled.
                # The node is final already; the coordinator only needs its slot back.
                node.result, node.fault = CANCELLED_ATTEMPT, None
                crew.report(self._inbox_send, node)
                raise
        # The node itself is the message: a message object (and a NodeOutput for the
        # plain value most actions return) per attempt would be garbage the collector
        # must chase, and with max_parallel tasks alive that costs more than the rest
        # of the bookkeeping.
        node.result, node.fault = output, error
        # Without the checkpoint of send() when the inbox has room: the task ends here
        # anyway, and a needless trip through the scheduler is a sizeable share of the
        # cost of a short action.
        try:
            self._inbox_send.send_nowait(node)
        except trio.WouldBlock:
            try:
                await self._inbox_send.send(node)
            except trio.Cancelled:
                crew.unsent.append(node)
                raise


#: what a timeout message adds about the attempt's work, by its node's ending
_AFTER = {
    "finished": "",
    "abandoned": "; its work could not be stopped and was abandoned (it may still be running)",
    "killed": "; its worker process was killed",
}

# An explicit task name spares Trio working one out for every worker; keep it true.
assert f"{Crews._work.__module__}.{Crews._work.__qualname__}" == WORKER_NAME
