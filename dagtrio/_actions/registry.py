"""Actions: the work a node does, and the registry that names them.

An action is anything with a ``name`` and an ``async def execute(ctx) -> NodeOutput``.
Most users write a plain function and decorate it with ``@registry.action()``: async
functions run in the Trio task, sync functions in a worker thread.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

import trio

from .._errors import UnknownActionError
from .._model.frozen import EMPTY
from .._model.spec import NodeCtx, NodeOutput, check_uses
from .._validate import check_int

__all__ = ["ActionRegistry", "CacheKey", "FunctionAction", "NodeAction", "RetryOn", "retry_filter"]

F = TypeVar("F", bound=Callable[..., Any])

#: How an action opts into memoization: ``False`` (never), ``True`` (key on the node's
#: inputs and upstream outputs) or a function of the `NodeCtx` returning a JSON value
#: that identifies the computation (``lambda ctx: ctx.inputs["url"]``).
CacheKey = bool | Callable[[NodeCtx], Any]

#: Which failures of an action are worth another attempt: an exception class, a tuple
#: of them, or a predicate of the exception (``lambda exc: exc.status >= 500``).
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def retry_filter(retry_on: object) -> tuple[type[BaseException], ...] | Callable[..., Any] | None:
    """``retry_on`` checked: ``None``, a tuple of exception classes, or a predicate.

    `TypeError` naming what is wrong otherwise (a string, an instance, a class that is
    not an exception), so a typo fails where the action is registered.
    """
    if retry_on is None:
        return None
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if isinstance(retry_on, tuple):
        for kind in retry_on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise TypeError(
                    f"retry_on must hold exception classes, got {kind!r} in {retry_on!r}"
                )
        return retry_on
    if callable(retry_on):
        return retry_on
    raise TypeError(
        "retry_on must be an exception class, a tuple of them, or a function of the"
        f" exception returning whether to retry; got {type(retry_on).__name__} {retry_on!r}"
    )


@runtime_checkable
class NodeAction(Protocol):
    """The protocol every action follows.

    ``execute`` runs one attempt. Return a `NodeOutput` (``success=False`` fails the
    attempt) or raise to fail it; it is cancelled through its node's cancel scope on
    timeout, branch cancellation or shutdown, like any Trio code.
    """

    name: str

    async def execute(self, ctx: NodeCtx) -> NodeOutput:
        """Run one attempt of the node described by ``ctx``."""
        ...


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - objects with an async __call__
    )


class FunctionAction:
    """A `NodeAction` made from a plain function of ``ctx``.

    An ``async def`` runs in the node's Trio task. A sync function runs in a worker
    thread (``trio.to_thread.run_sync``) under the registry's thread limiter, so a
    blocking call never stalls the coordinator. When such a node is cancelled or times
    out, Trio *abandons* the thread: the node ends at once and frees its
    ``max_parallel`` slot, but Python cannot stop a running thread, so the function runs
    on to its end in the background (its result is dropped) and keeps its thread-limiter
    token until then.

    A return value that is not a `NodeOutput` becomes ``NodeOutput.ok(value)``.

    ``executor`` names where its attempts run instead (see `dagtrio.executors`); ``None``
    is the Trio task for an async function, a worker thread for a sync one.
    """

    __slots__ = ("call", "executor", "fn", "is_async", "name")

    def __init__(
        self,
        fn: Callable[[NodeCtx], Any],
        name: str,
        limiter: trio.CapacityLimiter | None,
        executor: str | None = None,
    ) -> None:
        if executor is not None and (not isinstance(executor, str) or not executor):
            raise TypeError(f"executor must be a non-empty string or None, got {executor!r}")
        self.fn = fn
        self.name = name
        self.executor = executor
        self.is_async = _is_async_callable(fn)
        #: awaited by `execute`; returns what the function returned (the coordinator's
        #: workers await it directly and wrap the value themselves)
        self.call: Callable[[NodeCtx], Awaitable[Any]]
        if self.is_async:
            self.call = fn
        else:
            self.call = functools.partial(_run_in_thread, fn, limiter, f"dagtrio action {name}")

    async def execute(self, ctx: NodeCtx) -> NodeOutput:
        """Run the function on ``ctx`` and wrap a plain return value in `NodeOutput.ok`."""
        result = await self.call(ctx)
        if type(result) is NodeOutput:
            return result
        return NodeOutput(result)  # NodeOutput.ok(result), without the keyword plumbing

    def __repr__(self) -> str:
        kind = "async" if self.is_async else "sync"
        return f"<FunctionAction {self.name!r} ({kind}) {self.fn!r}>"


async def _run_in_thread(
    fn: Callable[[NodeCtx], Any],
    limiter: trio.CapacityLimiter | None,
    thread_name: str,
    ctx: NodeCtx,
) -> Any:
    return await trio.to_thread.run_sync(
        fn, ctx, abandon_on_cancel=True, limiter=limiter, thread_name=thread_name
    )


class ActionRegistry:
    """Names the actions a DAG may use.

    Specs refer to actions by name, so a graph can be described as data (JSON, YAML, a
    planner's output) and checked before it runs: a spec naming an unregistered action
    is refused before anything starts.

    ``max_threads`` bounds how many sync actions run in worker threads at once (default:
    Trio's default thread limiter, 40).

    >>> registry = ActionRegistry()
    >>> @registry.action()
    ... async def double(ctx):
    ...     return ctx.inputs["x"] * 2
    >>> "double" in registry
    True
    """

    def __init__(self, *, max_threads: int | None = None) -> None:
        if max_threads is not None:
            check_int("max_threads", max_threads, 1)
        self._actions: dict[str, NodeAction] = {}
        self._cache_keys: dict[str, CacheKey] = {}
        self._retry_on: dict[str, tuple[type[BaseException], ...] | Callable[..., Any]] = {}
        self._uses: dict[str, Mapping[str, int]] = {}
        self._limiter = trio.CapacityLimiter(max_threads) if max_threads is not None else None

    def register(
        self,
        action: NodeAction,
        *,
        replace: bool = False,
        cache: CacheKey = False,
        retry_on: RetryOn | None = None,
        uses: Mapping[str, int] | None = None,
    ) -> NodeAction:
        """Add ``action`` under ``action.name`` and return it.

        Registering a second action under a taken name is a `ValueError` (it is almost
        always a mistake); pass ``replace=True`` to swap one on purpose.

        ``cache`` opts the action into memoization across runs, for coordinators given
        a cache (``Coordinator(cache=SqliteJournal(...))``): a node whose cache key
        already succeeded reuses the stored outputs instead of running. ``True`` keys on
        the action name, the node's inputs and its upstream outputs (by dep id);
        a function of the `NodeCtx` returning a JSON value keys on the action name and
        that value instead (include a version in it to invalidate old entries when the
        action changes). Only for actions whose result depends on nothing else.

        ``retry_on`` says which failures are worth the attempts a node's ``try_count``
        has left: an exception class, a tuple of them, or a predicate of the exception.
        Any other exception ends the node at once. A timeout is offered to it as a
        `TimeoutError`; ``None`` (the default) retries every failure. Whatever it says,
        raising `dagtrio.PermanentError` or returning ``NodeOutput.failed(...,
        retry=False)`` is never retried, and a returned ``NodeOutput.failed`` without
        it always may be (there is no exception to judge).

        ``uses`` names the resources each attempt of the action holds while it runs,
        out of the `Coordinator`'s ``limits`` (``{"llm": 1}``): a node starts only once
        they are free. ``NodeSpec.uses`` overrides it for one node.
        """
        checked_retry = retry_filter(retry_on)
        checked_uses = None if uses is None else check_uses(uses, what="uses")
        if not (isinstance(cache, bool) or callable(cache)):
            raise TypeError(
                f"cache must be True, False or a function of the NodeCtx, got {cache!r}"
            )
        name = getattr(action, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"action {action!r} needs a non-empty string `name`")
        execute = getattr(action, "execute", None)
        if not callable(execute):
            raise TypeError(f"action {name!r} has no `execute(ctx)` method")
        if not inspect.iscoroutinefunction(execute):
            raise TypeError(f"action {name!r}: `execute` must be an async method")
        if name in self._actions and not replace:
            raise ValueError(f"an action named {name!r} is already registered")
        self._actions[name] = action
        if cache is False:
            self._cache_keys.pop(name, None)
        else:
            self._cache_keys[name] = cache
        if checked_retry is None:
            self._retry_on.pop(name, None)
        else:
            self._retry_on[name] = checked_retry
        if checked_uses:
            self._uses[name] = checked_uses
        else:
            self._uses.pop(name, None)
        return action

    @overload
    def action(self, fn: F, /) -> F: ...
    @overload
    def action(
        self,
        name: str | None = None,
        *,
        replace: bool = False,
        cache: CacheKey = False,
        executor: str | None = None,
        retry_on: RetryOn | None = None,
        uses: Mapping[str, int] | None = None,
    ) -> Callable[[F], F]: ...

    def action(
        self,
        name: Any = None,
        *,
        replace: bool = False,
        cache: CacheKey = False,
        executor: str | None = None,
        retry_on: RetryOn | None = None,
        uses: Mapping[str, int] | None = None,
    ) -> Any:
        """Decorator: register a function of ``ctx`` as an action, under its own name by default.

        Works as ``@registry.action``, ``@registry.action()`` and
        ``@registry.action("name")``. The function itself is returned unchanged, so it
        stays callable in unit tests. ``cache`` and ``retry_on`` are as for `register`:
        ``@registry.action(retry_on=(TimeoutError, OSError))`` retries network
        trouble and fails at once on a bug.

        ``executor`` names where its attempts run, as the `Coordinator`'s ``executors``
        map names (``"inline"`` and ``"thread"`` always exist): for example
        ``executor="process"`` for CPU-bound work. ``NodeSpec.executor`` overrides it
        for one node. ``uses`` is as for `register`: ``uses={"gpu": 1}`` holds one of
        the coordinator's ``limits={"gpu": ...}`` per attempt.
        """
        if callable(name):
            return self.action()(name)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"action name must be a non-empty string, got {name!r}")
        if executor is not None and (not isinstance(executor, str) or not executor):
            raise TypeError(f"executor must be a non-empty string or None, got {executor!r}")
        retry_filter(retry_on)  # refused here, not when the decorated function comes
        if uses is not None:
            check_uses(uses, what="uses")

        def decorate(fn: F) -> F:
            if not callable(fn):
                raise TypeError(f"@action needs a function, got {fn!r}")
            action_name = name or getattr(fn, "__name__", None)
            if not action_name:
                raise TypeError(f"cannot tell the name of {fn!r}; pass name=")
            self.register(
                FunctionAction(fn, action_name, self._limiter, executor),
                replace=replace,
                cache=cache,
                retry_on=retry_on,
                uses=uses,
            )
            return fn

        return decorate

    def get(self, name: str) -> NodeAction:
        """The action registered as ``name``; `UnknownActionError` (a `KeyError`) if none."""
        try:
            return self._actions[name]
        except KeyError:
            raise UnknownActionError(name, tuple(self._actions)) from None

    def cache_key(self, name: str) -> CacheKey:
        """How the action ``name`` is memoized: ``False``, ``True`` or its key function."""
        return self._cache_keys.get(name, False)

    def retry_on(self, name: str) -> tuple[type[BaseException], ...] | Callable[..., Any] | None:
        """Which failures of the action ``name`` are retried: ``None`` for every one."""
        return self._retry_on.get(name)

    def uses(self, name: str) -> Mapping[str, int]:
        """The resources each attempt of the action ``name`` holds (empty: none)."""
        return self._uses.get(name, EMPTY)

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def __repr__(self) -> str:
        return f"<ActionRegistry {sorted(self._actions)}>"
