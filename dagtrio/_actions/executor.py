"""Where an action's attempts run: the executor interface, and the context a remote action gets.

The coordinator stays in the Trio process; only actions move. An `Executor` runs one
attempt of a sync function somewhere (a thread, a worker process, a Dask cluster) and
says, through its `ending`, what becomes of an attempt's work when it is cancelled or
times out. Executors that run the function in another process give it a `PortableCtx`
instead of the `NodeCtx`: what can travel (``inputs``, ``upstream``, the ids, the
attempt), not what cannot (``cache``, ``app_data``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NoReturn, Self

import attrs
import trio

from .._model.spec import MAIN_BRANCH, Ending, NodeCtx, NodeRef
from .._validate import check_int

__all__ = ["Executor", "PortableCtx", "ThreadExecutor"]


@attrs.frozen(slots=True)
class PortableCtx:
    """What an action running in another process may read about its attempt.

    The same as `NodeCtx` but for ``cache`` and ``app_data``, which stay in the
    coordinator's process: reading them here raises `RuntimeError` saying so. Pass what
    such an action needs as its inputs or through its deps (``upstream``). It pickles.
    """

    dag_name: str
    node_id: str
    run_id: str
    inputs: Mapping[str, Any]
    upstream: Mapping[str, Any]
    attempt: int
    branch: str = MAIN_BRANCH
    #: the name of the executor it runs on, for error messages
    executor: str = "remote"

    @classmethod
    def of(cls, ctx: NodeCtx, executor: str) -> PortableCtx:
        """The portable part of ``ctx``, for an attempt on ``executor``."""
        return cls(
            ctx.dag_name,
            ctx.node_id,
            ctx.run_id,
            ctx.inputs,
            ctx.upstream,
            ctx.attempt,
            ctx.branch,
            executor,
        )

    @property
    def ref(self) -> NodeRef:
        """This node as a `NodeRef`."""
        return NodeRef(self.dag_name, self.node_id)

    async def emit(self, payload: Any = None) -> None:
        """Dropped: progress from another process does not reach the run's events.

        Here so that an action written for ``ctx.emit`` also runs remotely; it returns
        at once. Report partial results through the action's outputs instead.
        """

    def emit_from_thread(self, payload: Any = None) -> None:
        """Dropped, as `emit` is: the sync form, for the sync actions remote
        executors run (``NodeCtx.emit_from_thread`` in a worker thread)."""

    @property
    def cache(self) -> NoReturn:
        """Not available outside the coordinator's process: raises `RuntimeError`."""
        self._stays_home("cache")

    @property
    def app_data(self) -> NoReturn:
        """Not available outside the coordinator's process: raises `RuntimeError`."""
        self._stays_home("app_data")

    def _stays_home(self, name: str) -> NoReturn:
        raise RuntimeError(
            f"ctx.{name} is not available to node {self.node_id!r}: it runs on executor "
            f"{self.executor!r}, in another process, and gets only a portable context "
            "(inputs, upstream, node_id, run_id, dag_name, attempt, branch); pass what it "
            "needs as inputs or through its deps"
        )


class Executor(abc.ABC):
    """Where the attempts of sync actions run; subclass it to run them somewhere new.

    Name an executor in ``Coordinator(executors={"process": ProcessExecutor()})``, then
    use the name in ``@registry.action(executor="process")`` or ``NodeSpec.executor``.

    An executor is started when a run first needs it and stopped when that run ends,
    unless the application holds it open itself with ``async with executor:`` (then
    every run in the block shares it, and it stops when the block ends). Override
    `start` and `stop` for what lives that long (a pool, a cluster), and `run` for one
    attempt. An executor serves one Trio run at a time (its lock and events belong to
    the run that uses it); one run after another may share it.

    - ``ending``: what becomes of a cancelled or timed-out attempt's work here (see
      `Ending`); events and records say it.
    - ``portable``: whether actions get a `PortableCtx` (they run in another process)
      rather than the `NodeCtx` itself.
    """

    ending: Ending = "abandoned"
    portable: ClassVar[bool] = True

    def __init__(self) -> None:
        self._users = 0
        self._lock = trio.Lock()

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Open what the executor needs (a pool, a connection). Called once per lifetime."""

    async def stop(self) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Close what `start` opened, once nothing runs on it any more."""

    async def acquire(self) -> None:
        """Count one more user (a run, an ``async with``), starting the executor for the first."""
        async with self._lock:
            if self._users == 0:
                await self.start()
            self._users += 1

    async def release(self) -> None:
        """Count one user less, stopping the executor after the last."""
        async with self._lock:
            self._users -= 1
            if self._users == 0:
                await self.stop()

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            await self.release()

    # ------------------------------------------------------------------ work

    def refuse(self, fn: Callable[..., Any], *, is_async: bool) -> str | None:
        """Why this executor cannot run ``fn``, or ``None`` if it can.

        Checked when a node is added (before the run starts for the initial graph, a
        `CommandRejected` during it). By default: async functions belong in the Trio
        task (``executor="inline"``).
        """
        if is_async:
            return (
                "is an async function, and this executor runs sync functions"
                " (an async action runs in the Trio task: executor='inline')"
            )
        return None

    @abc.abstractmethod
    async def run(self, fn: Callable[[Any], Any], ctx: Any) -> Any:
        """Run one attempt: ``fn(ctx)`` where this executor runs work; return what it
        returned, or raise what it raised.

        ``ctx`` is a `PortableCtx` when ``portable`` is true, else the `NodeCtx`.
        Cancelled (a timeout, a branch cancel, a shutdown), stop the work if you can
        and say in ``ending`` whether you do.
        """


class ThreadExecutor(Executor):
    """Sync actions in worker threads of this process: the built-in ``"thread"`` executor.

    Give one its own limit with ``Coordinator(executors={"thread":
    ThreadExecutor(max_workers=8)})`` (by default sync actions share the registry's
    limiter, ``ActionRegistry(max_threads=...)``, else Trio's default one of 40), or
    another name for a separate pool of slow calls. Actions get the real `NodeCtx`.

    Python cannot stop a thread: a cancelled or timed-out attempt is ``abandoned``. The
    node ends at once, and the function runs on to its end in the background (its
    result dropped), keeping its thread's slot until then, so that no new work waits
    behind a thread that only looks free.
    """

    ending: Ending = "abandoned"
    portable: ClassVar[bool] = False

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None:
            check_int("max_workers", max_workers, 1)
        self.max_workers = max_workers
        self._limiter = trio.CapacityLimiter(max_workers) if max_workers is not None else None

    async def run(self, fn: Callable[[Any], Any], ctx: Any) -> Any:
        """``fn(ctx)`` in a worker thread; abandoned (not stopped) if cancelled."""
        return await trio.to_thread.run_sync(
            fn, ctx, abandon_on_cancel=True, limiter=self._limiter, thread_name="dagtrio action"
        )

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers!r})"
