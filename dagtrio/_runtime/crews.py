"""Where attempts run: crews of worker tasks, one per busy branch, and retry timers."""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from .._hooks.messages import Reply
from .._state.node import CANCELLED_ATTEMPT, Node
from .base import RunData, holds_cancellation
from .context import LiveCtx
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

    async def _work(self, crew: Crew, ctx: LiveCtx) -> None:
        """Run attempts of ``crew``'s branch, one after another, until the crew stops.

        A worker task per attempt cost Trio about 2 µs of a no-op node's bookkeeping
        (the task, its coroutine, its context, and ending them). A worker instead
        parks in its crew after an attempt, and the coordinator hands the next one
        straight to it (`Crew.start`). Each attempt still starts in a fresh copy of
        the context the worker was started with, as a task of its own would: what one
        action sets in a context variable, the next one does not see. The parked
        workers of a run are at most ``max_parallel``; one that would be more ends.
        """
        task = trio.lowlevel.current_task()
        # Trio runs each step of a task in ``task.context``: set before the worker
        # parks, the next attempt runs in the fresh copy from its first step on.
        pristine = task.context.copy()
        inbox = self._inbox_send
        idle = crew.idle

        def abort(_: Any) -> trio.lowlevel.Abort:
            # The crew was cancelled while this worker was parked: it ends.
            idle.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        while True:
            node = ctx._node
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
                        # Say what really happened to the work (Python cannot stop a
                        # thread).
                        error = (
                            f"timed out after {timeout:g}s (attempt {ctx.attempt})"
                            + _AFTER[self._state.placement.ending(node)]
                        )
            except Exception as exc:
                # Kept whole until the coordinator has formatted its traceback.
                error = exc
            except BaseException as exc:
                if not holds_cancellation(exc):
                    # KeyboardInterrupt, SystemExit: not this node's business. The crew's
                    # nursery closes as it propagates: the run must start nothing more
                    # (in it or anywhere), or the next start would add an internal
                    # error to what the caller sees.
                    self._halt()
                    raise
                if trio.current_effective_deadline() != -math.inf:
                    # A Cancelled that no scope of ours asked for: re-raised by hand out
                    # of the scope it belonged to. Taken for ours, it would end the
                    # crew's other nodes as cancelled and then crash the run; it is this
                    # attempt's failure.
                    error = exc
                else:
                    # The crew was cancelled (its branch, a shutdown) or the whole run
                    # was; an action with a nursery of its own raises a group holding
                    # Cancelled. The node is final already; the coordinator only needs
                    # its slot back.
                    node.result, node.fault = CANCELLED_ATTEMPT, None
                    crew.report(inbox, node)
                    raise
            # The node itself is the message: a message object (and a NodeOutput for
            # the plain value most actions return) per attempt would be garbage the
            # collector must chase.
            node.result, node.fault = output, error
            # Nothing of the attempt stays alive while the worker waits for the next.
            ctx = output = error = None  # type: ignore[assignment]
            # Without the checkpoint of send() when the inbox has room: a needless trip
            # through the scheduler is a sizeable share of the cost of a short action.
            try:
                inbox.send_nowait(node)
            except trio.WouldBlock:
                try:
                    await inbox.send(node)
                except trio.Cancelled:
                    crew.unsent.append(node)
                    raise
            del node
            if self._parked >= self._max_parallel:
                return  # enough workers wait already (other crews' among them)
            task.context = pristine.copy()
            idle.append(task)
            self._parked += 1
            try:
                ctx = await trio.lowlevel.wait_task_rescheduled(abort)
            finally:
                self._parked -= 1


#: what a timeout message adds about the attempt's work, by its node's ending
_AFTER = {
    "finished": "",
    "abandoned": "; its work could not be stopped and was abandoned (it may still be running)",
    "killed": "; its worker process was killed",
}

# An explicit task name spares Trio working one out for every worker; keep it true.
assert f"{Crews._work.__module__}.{Crews._work.__qualname__}" == WORKER_NAME
