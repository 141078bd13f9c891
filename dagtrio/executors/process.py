"""`ProcessExecutor`: sync actions in worker processes that really stop (trio-parallel).

The one module that imports trio-parallel (the ``process`` extra).
"""

from __future__ import annotations

import os
import pickle
import traceback
import types
import weakref
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from typing import Any, ClassVar, Literal

import trio

try:
    import trio_parallel
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError(
        'ProcessExecutor needs trio-parallel: pip install "dagtrio[process]"'
    ) from exc

from .._actions.executor import Executor, PortableCtx
from .._errors import describe
from .._model.spec import Ending
from .._validate import check_int, check_seconds
from ._shipping import dumps as _dumps
from ._shipping import unshippable

__all__ = ["ProcessExecutor", "RemoteTraceback", "WorkerDied"]


WorkerType = Literal["spawn", "forkserver", "fork"]


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text.

    Set as the ``__cause__`` of the exception re-raised here (as `concurrent.futures`
    does), so that a failed node's traceback shows where in the worker it failed.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class WorkerDied(RuntimeError):
    """A worker process ended while it ran an attempt (a crash, an outside kill)."""


class ProcessExecutor(Executor):
    """Sync actions in worker processes: every core, and cancellation that really stops.

    ``Coordinator(executors={"process": ProcessExecutor()})``, then
    ``@registry.action(executor="process")`` on a sync function of ``ctx``. Each
    attempt runs in a worker process of a pool kept for the executor's lifetime (a
    run, or the application's ``async with``): the first attempts start the workers,
    later ones reuse them.

    - ``max_workers``: processes at once (default: the cores this process may use).
    - ``kill_on_cancel``: a cancelled or timed-out attempt kills its worker at once
      (the default): the work really stops, and the attempt is reported ``killed``. With
      ``False`` the attempt is waited for instead (its slot taken until it ends), and
      reported ``finished``.
    - ``idle_timeout``: seconds an idle worker waits for work before it exits.
    - ``worker_type``: how workers start: ``"spawn"`` (the default; safe everywhere),
      ``"forkserver"`` or ``"fork"`` (faster to start; see `multiprocessing`).

    The action gets a `PortableCtx` (``ctx.cache`` and ``ctx.app_data`` stay in this
    process). The function must be importable by the workers (a module-level function)
    or picklable by value (cloudpickle takes lambdas and functions of ``__main__``,
    shipped afresh with every attempt, with the globals they see then; one that pickles
    by reference is sent once per pool); its inputs, upstream outputs and return value
    must pickle. What does not fails that node, with an error naming it.
    """

    portable: ClassVar[bool] = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        kill_on_cancel: bool = True,
        idle_timeout: float = 600.0,
        worker_type: WorkerType = "spawn",
    ) -> None:
        super().__init__()
        if max_workers is None:
            max_workers = _cores()
        self.max_workers = check_int("max_workers", max_workers, 1)
        if not isinstance(kill_on_cancel, bool):
            raise TypeError(f"kill_on_cancel must be True or False, got {kill_on_cancel!r}")
        self.kill_on_cancel = kill_on_cancel
        self.ending: Ending = "killed" if kill_on_cancel else "finished"
        self.idle_timeout = check_seconds("idle_timeout", idle_timeout)
        if worker_type not in ("spawn", "forkserver", "fork"):
            raise ValueError(
                f"worker_type must be 'spawn', 'forkserver' or 'fork', got {worker_type!r}"
            )
        self.worker_type = worker_type
        self._type = trio_parallel.WorkerType(worker_type)
        self._context: Any = None
        self._stack: AsyncExitStack | None = None
        self._limiter = trio.CapacityLimiter(self.max_workers)
        self._functions: weakref.WeakKeyDictionary[Callable[[Any], Any], bytes] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return (
            f"ProcessExecutor(max_workers={self.max_workers}, kill_on_cancel={self.kill_on_cancel})"
        )

    async def start(self) -> None:
        """Open the pool (workers start with the first attempts)."""
        stack = AsyncExitStack()
        self._context = await stack.enter_async_context(
            trio_parallel.open_worker_context(
                idle_timeout=self.idle_timeout,
                # Workers exit as soon as the pool closes: a run's end is not the
                # moment to wait for anything.
                grace_period=0.0,
                worker_type=self._type,
            )
        )
        self._stack = stack

    async def stop(self) -> None:
        """Stop every worker (an idle one exits; none is running by now)."""
        stack, self._stack, self._context = self._stack, None, None
        if stack is not None:
            # A worker that would not exit at once was killed: what we want.
            with suppress(trio_parallel.BrokenWorkerError):
                await stack.aclose()

    async def run(self, fn: Callable[[Any], Any], ctx: Any) -> Any:
        """``fn(ctx)`` in a worker process; the worker is killed if cancelled."""
        context = self._context
        if context is None:
            raise RuntimeError(f"{self!r} is not started (use it in a run or `async with`)")
        # Packed here with the standard pickle, which is several times faster than the
        # cloudpickle trio-parallel would use on the whole job: this process's time is
        # taken from the workers' cores.
        try:
            function, by_name = self._function(fn)
            job = function, _pack(ctx), by_name
        except Exception as exc:
            raise TypeError(unshippable(fn, ctx, exc, "a worker process")) from exc
        try:
            packed = await context.run_sync(
                _call,
                *job,
                kill_on_cancel=self.kill_on_cancel,
                limiter=self._limiter,
            )
        except trio_parallel.BrokenWorkerError as exc:
            raise WorkerDied(
                f"the worker process running node {ctx.node_id!r} died: {_exit(exc)}"
            ) from None
        return _unpack(packed, fn, ctx)

    def _function(self, fn: Callable[[Any], Any]) -> tuple[bytes, bool]:
        """``fn`` as bytes, and whether they are just its name.

        Only a plain module-level function is sent by name, and its bytes kept: the
        same name every time. Anything else (a callable object, a `functools.partial`,
        a function of ``__main__``, a lambda) carries state, and is pickled afresh for
        each attempt, so that it ships as it is now.
        """
        if type(fn) is not types.FunctionType or fn.__module__ == "__main__":
            return _pack(fn), False
        blob = self._functions.get(fn)
        if blob is None:
            try:
                # The standard pickle takes a function by name, or not at all.
                blob = pickle.dumps(fn, pickle.HIGHEST_PROTOCOL)
            except Exception:
                return _dumps(fn), False  # a lambda, a nested function: by value
            self._functions[fn] = blob
        return blob, True


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _exit(exc: BaseException) -> str:
    process = exc.args[-1] if exc.args else None
    code = getattr(process, "exitcode", None)
    if code is None:
        return describe(exc)
    if code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


#: in a worker: the functions it has unpickled, by their bytes (a few actions, mostly)
_FUNCTIONS: dict[bytes, Callable[[Any], Any]] = {}


def _call(function: bytes, packed_ctx: bytes, by_name: bool) -> bytes:
    """In the worker: run the attempt; its outcome as bytes, whatever it is.

    Pickled here, so that a result or an exception that does not pickle is reported
    as such rather than as a broken worker. What does not unpickle here (a module the
    worker cannot import) is reported as well. Only a function sent by name is kept
    from one attempt to the next: one sent by value starts afresh each time.
    """
    try:
        fn = _FUNCTIONS.get(function) if by_name else None
        if fn is None:
            fn = pickle.loads(function)
            if by_name:
                if len(_FUNCTIONS) >= 64:
                    _FUNCTIONS.clear()
                _FUNCTIONS[function] = fn
        ctx = pickle.loads(packed_ctx)
    except Exception as exc:
        return _pack(("unloadable", describe(exc)))
    try:
        value = fn(ctx)
    except Exception as exc:
        text = traceback.format_exc()
        try:
            return _pack(("raised", exc, text))
        except Exception:
            return _pack(("raised", None, text, describe(exc)))
    try:
        return _pack(("returned", value))
    except Exception as exc:
        return _pack(("unpicklable", type(value).__name__, describe(exc)))


def _pack(value: Any) -> bytes:
    # The standard pickle first: several times faster than cloudpickle on plain values.
    # But it names what ``__main__`` defines (a class, a function in a partial), which
    # a worker may have no way to import (a notebook, ``python -c``): cloudpickle
    # sends those by value. (A string that merely says "__main__" costs the same.)
    try:
        blob = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return _dumps(value)  # a lambda, a nested function: by value
    return _dumps(value) if b"__main__" in blob else blob


def _unpack(packed: bytes, fn: Callable[[Any], Any], ctx: PortableCtx) -> Any:
    outcome = pickle.loads(packed)  # cloudpickle writes what pickle reads
    kind = outcome[0]
    if kind == "returned":
        return outcome[1]
    if kind == "unloadable":
        raise TypeError(
            f"node {ctx.node_id!r}: its function {getattr(fn, '__qualname__', fn)!r} or "
            f"its context does not load in a worker process: {outcome[1]} (is its "
            "module importable there?)"
        )
    if kind == "unpicklable":
        raise TypeError(
            f"node {ctx.node_id!r} returned a {outcome[1]} that cannot be pickled back "
            f"from its worker process: {outcome[2]}"
        )
    exc = outcome[1]
    if exc is None:  # it did not pickle: its description survives
        exc = RuntimeError(outcome[3])
    raise exc from RemoteTraceback(outcome[2])


ProcessExecutor.__module__ = "dagtrio.executors"  # where users import it from
