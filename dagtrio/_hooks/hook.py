"""Hooks: code that watches a run's events and answers with commands."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from .._model.commands import ExecutorCommand
from .._model.events import ExecutionEvent
from .._state.view import GraphView

__all__ = ["EventHook", "HookContext", "HookLike", "as_hook", "command_list", "hook_name"]


@attrs.frozen(slots=True)
class HookContext:
    """What a hook may know about the run it watches.

    ``graph`` is a live read-only view (status, spec and outputs of any node);
    ``app_data`` is whatever the application gave the `Coordinator`.
    """

    run_id: str
    dag_name: str
    app_data: Any
    graph: GraphView


class EventHook:
    """Base class for hooks: override what you need; every method defaults to no commands.

    Hooks run as a pipeline of supervised child tasks of the run, in registration
    order. Each sees every event exactly once, in the run's one order, and the commands
    it returns (an iterable, a single command, or ``None``) are applied in the order
    returned. A slow hook slows the run down (backpressure) but cannot deadlock it.

    - ``on_start(ctx)`` runs before the first node starts; its commands are applied
      first, so a planner can seed the graph there.
    - ``handle(ctx, event)`` runs once per event.
    - ``on_complete(ctx, success)`` runs once when the run has ended. The run cannot
      change any more, so anything it returns is ignored.

    A node whose deps are done starts the moment it is added, so to hold one for
    approval, return ``PauseBranch`` for its branch *ahead of* the command that adds it;
    pausing in answer to its `NodeAdded` may come too late.

    The methods may also be plain ``def`` (they then run in the run's own Trio
    thread, like a sync function hook, so they must not block); type checkers will
    flag such an override, so typed code should prefer ``async def``.

    Across a crash and resume (with a journal) delivery is at-least-once: a hook that
    adds nodes with explicit ids is idempotent for free, since a repeated `AddNode` is
    rejected as a duplicate. **A hook that adds nodes with automatic ids (no ``id=``)
    may add them twice after a crash**: derive the ids from the event instead
    (``NodeSpec("summarize", id=f"{event.node.node}/summary")``).
    """

    #: name used in `HookFailed` events; defaults to the class name
    name: str | None = None

    async def on_start(self, ctx: HookContext) -> Iterable[ExecutorCommand] | None:
        """Called once before any node starts; may return commands (seed the graph)."""
        return None

    async def handle(
        self, ctx: HookContext, event: ExecutionEvent
    ) -> Iterable[ExecutorCommand] | ExecutorCommand | None:
        """Called once for every event; may return commands."""
        return None

    async def on_complete(self, ctx: HookContext, success: bool) -> None:
        """Called once after the run ended (``success`` as in the report)."""
        return None


HookLike = EventHook | Callable[[HookContext, ExecutionEvent], Any]


class _FunctionHook(EventHook):
    """Adapts ``async def hook(ctx, event)`` (or a plain function) to `EventHook`."""

    def __init__(self, fn: Callable[[HookContext, ExecutionEvent], Any]) -> None:
        self._fn = fn
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004
        )
        self.name = getattr(fn, "__qualname__", None) or repr(fn)

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        result = self._fn(ctx, event)
        if self._is_async or inspect.isawaitable(result):
            result = await result
        return result

    def __repr__(self) -> str:
        return f"<hook {self.name}>"


def as_hook(hook: HookLike) -> EventHook:
    """Accept an `EventHook` or a function of ``(ctx, event)``; refuse anything else."""
    if isinstance(hook, EventHook):
        return hook
    if isinstance(hook, type):
        # A class is callable, but calling it with (ctx, event) would only fail at the
        # first event; say so now.
        raise TypeError(f"pass a hook instance, not the class {hook.__name__}")
    if callable(hook):
        return _FunctionHook(hook)
    raise TypeError(f"a hook must be an EventHook or a function (ctx, event), got {hook!r}")


def hook_name(hook: EventHook) -> str:
    return hook.name or type(hook).__name__


def command_list(result: object, hook: str) -> list[ExecutorCommand]:
    """What a hook returned, as a list of commands; `TypeError` for anything else."""
    if result is None:
        return []
    if isinstance(result, ExecutorCommand):
        return [result]
    if isinstance(result, str | bytes) or not isinstance(result, Iterable):
        raise TypeError(
            f"hook {hook} returned {result!r}; return commands (an iterable), one command, or None"
        )
    commands = list(result)
    for command in commands:
        if not isinstance(command, ExecutorCommand):
            raise TypeError(f"hook {hook} returned {command!r}, which is not a command")
    return commands
