"""The coordinator: what users configure once, and the runs it starts, resumes and ends.

A `Coordinator` holds configuration only. `Coordinator.open_run` makes a `Run` (see
`_runtime.run`), starts its coordinator task in a nursery of its own, hands the run to
the body, and raises what the run and the body raised when the block ends.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal

import attrs
import trio

from .._actions.executor import Executor
from .._actions.placement import check_executors
from .._actions.registry import ActionRegistry
from .._durable.sqlite import SqliteJournal, journal_limiter
from .._errors import JournalError
from .._hooks.hook import EventHook, HookLike, as_hook, hook_name
from .._model.report import RunReport
from .._model.spec import NodeSpec
from .._state.state import RerunPlan
from .._validate import check_int
from .instruments import Instrument
from .options import HookErrors, OnFailure, Order, RunOptions
from .run import Run

__all__ = ["Coordinator", "HookErrors", "OnFailure", "Rerun", "run_dag", "run_dag_sync"]


class Coordinator:
    """Runs DAGs of registered actions, in parallel, with hooks that can grow them.

    A coordinator holds configuration only; every `run` / `open_run` gets its own
    graph, so one coordinator can serve many runs, one after another or at once.

    - ``registry``: the actions specs may name.
    - ``hooks``: `EventHook` objects or ``async def hook(ctx, event)`` functions, run as a
      pipeline in this order.
    - ``max_parallel``: at most this many actions run at any moment.
    - ``event_capacity``: capacity of each channel of the event pipeline (hooks and
      ``run.events()`` readers); at most this many events (at least one) wait in it
      before the coordinator stops starting nodes. 0 makes every hand-over a rendezvous.
    - ``command_capacity``: capacity of the coordinator's inbox (worker results, hook
      commands, submitted commands).
    - ``on_failure``: ``"skip"`` (dependents of a failed node are skipped, the rest goes
      on), ``"fail_fast"`` (the first final failure cancels the run) or ``"hold"``
      (a failed node is held for a decision and its dependents wait: `RetryNode`
      runs it again, `CompleteNode` supplies its outputs; the rest of the run goes
      on, and a run with nothing left but held work waits, saying `RunIdle`).
    - ``hook_errors``: ``"fail"`` (a hook that raises fails the run with its exception)
      or ``"isolate"`` (a `HookFailed` event is emitted and the hook goes on receiving).
    - ``journal``: a `SqliteJournal` that records every run durably, so that a run
      whose process died can be finished with `resume`.
    - ``cache``: a `SqliteJournal` (the journal's own file, or another) whose cache
      table memoizes results across runs and processes: a node that opts in (its
      action registered with ``cache=``, or ``NodeSpec(cache=True)``) and whose cache
      key already succeeded reuses the stored outputs instead of running, and its
      report record says ``cached``. Without it nothing is cached, whatever the
      actions ask. Not to be confused with ``ctx.cache``: this run's outputs so far.
    - ``app_data``: anything; handed to actions (``ctx.app_data``) and hooks.
    - ``executors``: where actions may run, by name (see `dagtrio.executors`):
      ``{"process": ProcessExecutor(), "dask": DaskExecutor(address=...)}``; actions
      and specs name them (``@registry.action(executor="process")``,
      ``NodeSpec.executor``). ``"inline"`` (the Trio task) and ``"thread"`` (a worker
      thread) always exist; ``"thread"`` may be replaced. A node naming an executor
      that is not there is refused before the run starts. Each executor is started
      when a run first needs it and stopped when the run ends, unless the application
      holds it open (``async with executor:``).
    - ``order``: which ready node starts first. ``"fifo"`` (the default): the one ready
      first. ``"critical_path"``: the one with the longest remaining path to the end of
      the graph, in estimated seconds (`NodeSpec.estimate`, else the action's mean
      duration over the journal's latest runs, else 1 s per node), kept current as
      the graph grows. Either way a higher `NodeSpec.priority` goes first.
    - ``limits``: resources beside ``max_parallel``, by name and amount
      (``{"llm": 4, "gpu": 1}``): a node whose action (``@registry.action(uses=...)``)
      or spec (`NodeSpec.uses`) uses some starts only while that much of each is free.
      A node using a resource with no limit, or more than its limit, is refused.
    - ``instruments``: `Instrument` objects told, synchronously and in order, of each
      run's start and end, every attempt's start and end, retries and applied
      commands: for metrics, traces (`dagtrio.tracing.OpenTelemetry`) and logs. They
      can neither steer nor slow the run; one that raises is logged and detached.
    """

    def __init__(
        self,
        registry: ActionRegistry,
        hooks: Iterable[HookLike] = (),
        *,
        max_parallel: int = 64,
        event_capacity: int = 100,
        command_capacity: int = 100,
        on_failure: OnFailure = "skip",
        hook_errors: HookErrors = "fail",
        cache: SqliteJournal | None = None,
        journal: SqliteJournal | None = None,
        app_data: Any = None,
        executors: Mapping[str, Executor] | None = None,
        order: Order = "fifo",
        limits: Mapping[str, int] | None = None,
        instruments: Iterable[Instrument] = (),
    ) -> None:
        if not isinstance(registry, ActionRegistry):
            raise TypeError(f"registry must be an ActionRegistry, got {type(registry).__name__}")
        self.registry = registry
        self.hooks: tuple[EventHook, ...] = tuple(as_hook(hook) for hook in hooks)
        self.max_parallel = check_int("max_parallel", max_parallel, 1)
        self.event_capacity = check_int("event_capacity", event_capacity, 0)
        self.command_capacity = check_int("command_capacity", command_capacity, 0)
        if on_failure not in ("skip", "fail_fast", "hold"):
            raise ValueError(
                f"on_failure must be 'skip', 'fail_fast' or 'hold', got {on_failure!r}"
            )
        if hook_errors not in ("fail", "isolate"):
            raise ValueError(f"hook_errors must be 'fail' or 'isolate', got {hook_errors!r}")
        self.on_failure: OnFailure = on_failure
        self.hook_errors: HookErrors = hook_errors
        for name, store in (("journal", journal), ("cache", cache)):
            if store is None:
                continue
            if not isinstance(store, SqliteJournal):
                raise TypeError(f"{name} must be a SqliteJournal, got {type(store).__name__}")
            if store.read_only:
                raise ValueError(f"{name} {store.path} was opened read-only; a run writes to it")
        self.journal = journal
        self.cache = cache
        self.app_data = app_data
        self.executors: Mapping[str, Executor] = check_executors(executors)
        if order not in ("fifo", "critical_path"):
            raise ValueError(f"order must be 'fifo' or 'critical_path', got {order!r}")
        self.order: Order = order
        self.limits: Mapping[str, int] = _check_limits(limits)
        self.instruments: tuple[Instrument, ...] = _check_instruments(instruments)

    @asynccontextmanager
    async def open_run(
        self,
        specs: Iterable[NodeSpec] = (),
        *,
        dag_name: str = "dag",
        run_id: str | None = None,
        resume: str | None = None,
        rerun: Rerun | None = None,
        rerun_from: Iterable[str] = (),
        outputs: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Run]:
        """Start a run and hand it over while it goes on.

        ``async with coordinator.open_run(specs) as run:`` — the body can submit
        commands, read ``run.events()`` or watch ``run.graph``. Leaving the block waits
        for the run to end; cancelling the enclosing scope cancels the run. The initial
        specs are checked before anything starts (`InvalidGraphError` names the node and
        the problem). A hook that fails the run makes leaving the block raise its
        exception; an exception in the body cancels the run and propagates as it is.

        A hook (or the journal) that fails the run cancels the body at once; if the
        body raises as well, leaving the block raises both, in an exception group. A
        ``KeyboardInterrupt`` (or ``SystemExit``) raised in an action or a hook reaches
        the caller as itself.

        ``resume=run_id`` finishes a run recorded in the coordinator's journal instead
        of starting one (see `resume`); ``specs`` must then be empty. A run that had
        finished is handed over finished: nothing runs, ``run.wait()`` returns its
        stored report. ``rerun``, ``rerun_from`` and ``outputs`` (with ``resume`` only)
        run parts of it again, as for `resume`.
        """
        plan = _plan(resume, rerun, rerun_from, outputs)
        run = await self._make_run(
            specs, dag_name=dag_name, run_id=run_id, resume=resume, plan=plan
        )
        if run.finished:
            yield run  # resumed, but it had finished: nothing runs
            return
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(run._serve)
                run._enter_body()
                try:
                    # Cancelled when the run fails (a hook, the journal): the body must
                    # not go on with a run that is over, nor hide its error.
                    with run._body_scope:
                        yield run
                except BaseException as exc:
                    # Re-raised below, outside the nursery, so the body's own exception
                    # reaches the caller as it is rather than inside an ExceptionGroup.
                    body_error = exc
                    run.cancel()
                finally:
                    run._leave_body()
        except BaseExceptionGroup as group:
            interrupt = _interrupt_in(group)
            if interrupt is None:
                raise
            # An action (or a hook) was interrupted: Ctrl-C reaches the caller as the
            # KeyboardInterrupt it is, not three task groups deep.
            raise interrupt from None
        finally:
            run._release_claim()  # if the run never got to serve
        failure = run._failure
        if body_error is not None:
            if failure is not None and failure is not body_error:
                raise BaseExceptionGroup(
                    f"run {run.run_id} failed, and so did the body of its open_run",
                    [failure, body_error],
                )
            raise body_error
        if failure is not None:
            raise failure

    async def run(
        self, specs: Iterable[NodeSpec], *, dag_name: str = "dag", run_id: str | None = None
    ) -> RunReport:
        """Run ``specs`` (and whatever hooks add) to the end and return the report."""
        async with self.open_run(specs, dag_name=dag_name, run_id=run_id) as run:
            pass
        return run.report()

    async def resume(
        self,
        run_id: str,
        *,
        rerun: Rerun | None = None,
        rerun_from: Iterable[str] = (),
        outputs: Mapping[str, Any] | None = None,
    ) -> RunReport:
        """Finish run ``run_id`` from the journal, after its process died; return the report.

        The graph is rebuilt as it was, nodes added while it ran included. Every node
        that had succeeded keeps its outputs and does not run again; nodes that were
        running or waiting run (again: actions that were running when the process
        died run at least once more, with their full ``try_count``); paused branches
        stay paused and cancelled ones cancelled; a shutdown under way is finished at
        once (its grace period does not survive the crash). Hooks receive `RunResumed`
        first (``on_start`` runs again only if its commands had not been committed),
        then again every event that had not passed every hook before the crash, so a
        hook sees each event at least once. A hook that adds nodes with explicit ids is
        idempotent for free: the repeated `AddNode` is rejected as a duplicate. **A
        hook that adds nodes with automatic ids may add them twice** after a crash:
        give the nodes a hook adds ids derived from the event (``f"{node}/summary"``).

        A run that had already finished runs nothing: its stored report is returned,
        so a supervisor may call this unconditionally after a restart. The run is
        claimed for this process while it runs (an operating-system lock the kernel
        drops when the process dies), so two resumes of one run never both run it.

        **Running parts again** (a finished run, or one whose process died):

        - ``rerun="failed"``: every node that failed, was skipped or was cancelled
          (outside cancelled branches) waits again, with a fresh ``try_count``;
        - ``rerun_from=["x", ...]``: ``x`` and every node below it run again, even
          those that succeeded (they were computed from what ``x`` gave);
        - ``outputs={"x": value}``: ``x`` succeeds with ``value`` without running
          (its record says ``supplied``), and every node below it runs again.

        Succeeded outputs elsewhere are kept. The new attempts are appended to the
        same run in the journal (attempt numbers go on), so ``dagtrio report`` shows
        the whole history; hooks receive `RunResumed` naming the nodes that wait
        again. An id that is not in the run, a node in a cancelled branch, or outputs
        the journal cannot store: `InvalidGraphError` naming it, before anything runs
        or is written.

        `JournalError` if the coordinator has no journal, the journal has no such run,
        or the run is going on (in this process or another).
        """
        async with self.open_run(
            resume=run_id, rerun=rerun, rerun_from=rerun_from, outputs=outputs
        ) as run:
            pass
        return run.report()

    def _options(self) -> RunOptions:
        return RunOptions(
            self.registry,
            self.hooks,
            self.max_parallel,
            self.event_capacity,
            self.command_capacity,
            self.on_failure,
            self.hook_errors,
            self.journal,
            self.cache,
            self.app_data,
            self.executors,
            self.order,
            self.limits,
            instruments=self.instruments,
        )

    async def _make_run(
        self,
        specs: Iterable[NodeSpec],
        *,
        dag_name: str,
        run_id: str | None,
        resume: str | None,
        plan: RerunPlan | None = None,
    ) -> Run:
        journal = self.journal
        run_options = self._options()
        if self.order == "critical_path" and journal is not None:
            # Past runs' durations estimate the nodes whose spec gives none.
            estimates = await trio.to_thread.run_sync(
                journal.mean_durations, limiter=journal_limiter()
            )
            run_options = attrs.evolve(run_options, estimates=estimates)
        if resume is None:
            run = Run(run_options, specs, dag_name=dag_name, run_id=run_id)
            if journal is not None:
                options = {
                    "max_parallel": self.max_parallel,
                    "on_failure": self.on_failure,
                    "hook_errors": self.hook_errors,
                    "hooks": [hook_name(hook) for hook in self.hooks],
                    "order": self.order,
                    "limits": dict(self.limits),
                }
                recorder = run._recorder
                assert recorder is not None
                rows, recorder.rows = recorder.rows, []
                await trio.to_thread.run_sync(
                    journal._begin,
                    run.run_id,
                    run.dag_name,
                    options,
                    run._state.started_at,
                    rows,
                    recorder.nodes,
                    limiter=journal_limiter(),
                )
                run._claimed = True
                recorder.committed = recorder.seq
            return run
        if journal is None:
            raise JournalError("resume needs a coordinator with a journal (journal=...)")
        if any(True for _ in specs):
            raise ValueError("open_run(resume=...) takes no specs: the journal has the graph")
        try:
            # Reading and claiming are one step: a run read here cannot be finished by
            # another process before this one claims it.
            stored, claimed = await trio.to_thread.run_sync(
                partial(journal._claim, resume, reopen=plan is not None),
                limiter=journal_limiter(),
            )
        except KeyError:
            raise JournalError(f"journal {journal.path} has no run {resume!r}") from None
        try:
            if not claimed:
                return Run._from_finished(run_options, stored)
            run = Run(
                run_options,
                (),
                dag_name=stored.info.dag_name,
                run_id=resume,
                stored=stored,
                rerun=plan,
            )
            if plan is not None:
                # The re-run's record (and a finished run going on) is durable before
                # anything runs: a crash now resumes the re-run, not the old ending.
                recorder = run._recorder
                assert recorder is not None
                rows, recorder.rows = recorder.rows, []
                await trio.to_thread.run_sync(
                    partial(
                        journal._write,
                        resume,
                        rows,
                        recorder.handled,
                        recorder.nodes,
                        reopen=stored.info.status == "finished",
                    ),
                    limiter=journal_limiter(),
                )
                recorder.committed = recorder.seq
            run._claimed = True
            return run
        except BaseException:
            if claimed:
                journal._release(resume)
            raise


#: what ``resume(rerun=...)`` accepts
Rerun = Literal["failed"]


def _plan(
    resume: str | None, rerun: object, rerun_from: Iterable[str], outputs: object
) -> RerunPlan | None:
    """The re-run asked of ``open_run`` / ``resume``, checked; None for none."""
    if rerun not in (None, "failed"):
        raise ValueError(f"rerun must be 'failed' or None, got {rerun!r}")
    plan = RerunPlan(rerun == "failed", rerun_from, outputs)  # type: ignore[arg-type]
    if not plan:
        return None
    if resume is None:
        raise ValueError("rerun, rerun_from and outputs go with resume=RUN_ID")
    return plan


def _interrupt_in(group: BaseExceptionGroup[Any]) -> BaseException | None:
    """The KeyboardInterrupt (or SystemExit) a group of a run's tasks holds, if that is
    all it holds besides the cancellations it caused."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(reversed(exc.exceptions))
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    if leaves and all(isinstance(exc, KeyboardInterrupt | SystemExit) for exc in leaves):
        return leaves[0]
    return None


async def run_dag(specs: Iterable[NodeSpec], registry: ActionRegistry, **options: Any) -> RunReport:
    """Run a DAG to its end in one call: ``await run_dag(specs, registry, max_parallel=8)``.

    ``options`` are the `Coordinator` options (``hooks=``, ``max_parallel=``, …) plus
    ``dag_name=`` and ``run_id=``.
    """
    run_options = {key: options.pop(key) for key in ("dag_name", "run_id") if key in options}
    return await Coordinator(registry, **options).run(specs, **run_options)


def run_dag_sync(
    specs: Sequence[NodeSpec] | Iterable[NodeSpec], registry: ActionRegistry, **options: Any
) -> RunReport:
    """`run_dag` for scripts: starts Trio (``trio.run``) and returns the report."""
    return trio.run(lambda: run_dag(specs, registry, **options))


def _check_instruments(instruments: Iterable[Instrument]) -> tuple[Instrument, ...]:
    if isinstance(instruments, Instrument):
        raise TypeError("instruments must be a list of Instrument objects, not one Instrument")
    found = tuple(instruments)
    for instrument in found:
        if not isinstance(instrument, Instrument):
            raise TypeError(
                "instruments must be Instrument objects (subclass dagtrio.Instrument),"
                f" got {type(instrument).__name__}"
            )
    return found


def _check_limits(limits: object) -> Mapping[str, int]:
    """``limits`` as a read-only mapping of resource names to amounts (ints >= 1)."""
    if limits is None:
        return types.MappingProxyType({})
    if not isinstance(limits, Mapping):
        raise TypeError(
            f"limits must be a mapping of resource names to amounts, got {type(limits).__name__}"
        )
    checked: dict[str, int] = {}
    for name, amount in limits.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"limits: resource names must be non-empty strings, got {name!r}")
        checked[name] = check_int(f"limits[{name!r}]", amount, 1)
    return types.MappingProxyType(checked)
