"""Where one run's nodes run: its executors by name, started on first use, stopped with it.

``"inline"`` (the node's Trio task) and ``"thread"`` (a worker thread) always exist; the
`Coordinator`'s ``executors`` add others, or replace ``"thread"``. A node runs on
``NodeSpec.executor``, else on its action's, else inline for an async function and on
``"thread"`` for a sync one. The state asks `refuse` when a node is added and `place`
once per action and executor; the worker then only awaits the call it got.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio

from .._errors import describe
from .._model.spec import Ending, NodeCtx
from .executor import Executor, PortableCtx
from .registry import FunctionAction, NodeAction

__all__ = ["BUILT_IN", "INLINE", "THREAD", "Call", "Placement", "check_executors"]

logger = logging.getLogger("dagtrio")

INLINE = "inline"
THREAD = "thread"
BUILT_IN = (INLINE, THREAD)

#: what a worker awaits for one attempt
Call = Callable[[NodeCtx], Awaitable[Any]]


def check_executors(executors: object) -> dict[str, Executor]:
    """``Coordinator(executors=...)`` checked: a mapping of names to `Executor` objects."""
    if executors is None:
        return {}
    if not isinstance(executors, Mapping):
        raise TypeError(
            f"executors must be a mapping of names to Executor objects, got {executors!r}"
        )
    checked: dict[str, Executor] = {}
    for name, executor in executors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"executor names must be non-empty strings, got {name!r}")
        if name == INLINE:
            raise ValueError(
                "the executor 'inline' is the node's own Trio task and cannot be replaced"
            )
        if not isinstance(executor, Executor):
            raise TypeError(
                f"executors[{name!r}] must be an Executor (see dagtrio.executors), got {executor!r}"
            )
        checked[name] = executor
    return checked


async def _inline_sync(fn: Callable[[NodeCtx], Any], ctx: NodeCtx) -> Any:
    # The user asked for it: the function runs in the Trio task, blocking it meanwhile.
    await trio.lowlevel.checkpoint()
    return fn(ctx)


class Placement:
    """One run's executors: which call runs a node, and their lifetime for that run."""

    def __init__(self, executors: Mapping[str, Executor]) -> None:
        self._executors = dict(executors)
        #: (executor name or None, action) -> the call and the ending of its nodes
        self._placed: dict[tuple[str | None, NodeAction], tuple[Call, Ending]] = {}
        #: executors this run acquired, in order (released in reverse at its end)
        self._opened: list[Executor] = []
        self._lock = trio.Lock()
        self._closed = False

    def names(self) -> list[str]:
        """Every executor name a node may use in this run."""
        return [*BUILT_IN, *(name for name in self._executors if name != THREAD)]

    def refuse(self, name: str | None, action: NodeAction) -> str | None:
        """Why a node of ``action`` cannot run on executor ``name``, or ``None``."""
        if name is None or name == INLINE:
            return None
        executor = self._executors.get(name)
        if executor is None:
            if name == THREAD:
                if isinstance(action, FunctionAction) and not action.is_async:
                    return None
                return f"action {action.name!r} cannot run on executor 'thread': " + (
                    "it is an async function (it runs in the Trio task: executor='inline')"
                    if isinstance(action, FunctionAction)
                    else "it is not a function registered with @registry.action"
                )
            known = ", ".join(repr(known) for known in self.names())
            return (
                f"executor {name!r} is not known (known: {known}); map it in "
                f"Coordinator(executors={{{name!r}: ...}})"
            )
        if not isinstance(action, FunctionAction):
            return (
                f"action {action.name!r} cannot run on executor {name!r}: it is not a "
                "function registered with @registry.action"
            )
        why = executor.refuse(action.fn, is_async=action.is_async)
        if why is None:
            return None
        return f"action {action.name!r} cannot run on executor {name!r}: it {why}"

    def place(self, name: str | None, action: NodeAction) -> tuple[Call, Ending]:
        """The call a worker awaits for a node of ``action`` on executor ``name``
        (``None``: the default), and what becomes of its work when it is cancelled.
        `refuse` said yes first."""
        key = (name, action)
        placed = self._placed.get(key)
        if placed is None:
            placed = self._placed[key] = self._place(name, action)
        return placed

    def ending(self, node: Any) -> Ending:
        """What becomes of the work of ``node``'s attempt if it is cancelled now (a
        `Node` of the state: its spec and action say where it runs)."""
        action = node.action
        name = node.spec.executor
        if name is None:
            name = getattr(action, "executor", None)
        return self.place(name, action)[1]

    def _place(self, name: str | None, action: NodeAction) -> tuple[Call, Ending]:
        if not isinstance(action, FunctionAction):
            return action.execute, "finished"
        if name is None:
            name = INLINE if action.is_async else THREAD
        if name == INLINE:
            if action.is_async:
                return action.fn, "finished"
            return functools.partial(_inline_sync, action.fn), "finished"
        executor = self._executors.get(name)
        if executor is None:  # the built-in "thread": the registry's limiter
            return action.call, "abandoned"
        return functools.partial(self._run, executor, name, action.fn), executor.ending

    async def _run(
        self, executor: Executor, name: str, fn: Callable[[Any], Any], ctx: NodeCtx
    ) -> Any:
        if executor not in self._opened:
            await self._open(executor)
        return await executor.run(fn, PortableCtx.of(ctx, name) if executor.portable else ctx)

    async def _open(self, executor: Executor) -> None:
        # Shielded: an executor half started by a cancelled attempt would be stopped
        # by nobody. Executors bound their own start (a cluster that does not answer).
        with trio.CancelScope(shield=True):
            async with self._lock:
                if self._closed:
                    raise RuntimeError("the run is over: its executors are stopped")
                if executor not in self._opened:
                    await executor.acquire()
                    self._opened.append(executor)

    async def aclose(self) -> None:
        """Release every executor this run started (the last user stops it)."""
        with trio.CancelScope(shield=True):
            async with self._lock:
                self._closed = True
                opened, self._opened = self._opened, []
                for executor in reversed(opened):
                    try:
                        await executor.release()
                    except Exception as exc:
                        # The run's outcome stands; a pool that fails to close is the
                        # application's to hear of, not a reason to lose the report.
                        logger.warning(
                            "executor %r failed to stop: %s",
                            executor,
                            describe(exc),
                            extra={"dagtrio_event": "executor_failed"},
                        )
