"""Every runner ``dagtrio bench`` knows, by name, and how each is checked and timed.

A `Runner` turns a `Workload` into a `Trial`: ``check()`` runs it once and raises
`AssertionError` unless it was correct, ``run()`` runs it once more and returns the
wall time in seconds. Graphs, specs and task dicts (the *input*) are built before the
clock starts; each timing covers one whole run (the scheduler's own bookkeeping
included) inside an already started ``trio.run``.

``dagtrio-journal`` is dagtrio recording the run in a `SqliteJournal`: every run
(check, timed or weighed) writes a fresh file in a temporary folder of its own, made
before the clock starts and deleted after it stops. The clock covers
``coordinator.run(...)`` as for ``dagtrio``, so it includes opening the file and
creating its tables (the journal opens lazily, on the run's first write) and every
commit up to the last one, which the run waits for before it returns.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from .. import (
    ActionRegistry,
    Coordinator,
    EventHook,
    EventStream,
    ExecutionEvent,
    HookContext,
    RunReport,
    SqliteJournal,
    testing,
)
from ..executors import Executor
from .baselines import (
    AsyncScheduler,
    check_scheduler,
    check_sync_scheduler,
    dask_graph,
    dask_sync,
    dask_threads,
    graphlib_trio,
    trio_floor,
    trio_minimal,
    trio_naive,
    trio_pooled,
)
from .generators import Graph, graph_specs, growth, node_id
from .workload import Workload

__all__ = [
    "FLOOR",
    "JOURNAL",
    "RUNNERS",
    "PassThrough",
    "Runner",
    "Trial",
    "check_journal",
    "check_report",
    "runner_names",
]

#: The runner every ratio is taken against.
FLOOR = "trio-floor"

#: dagtrio with a journal; ``--journal`` runs it beside ``dagtrio``.
JOURNAL = "dagtrio-journal"

#: The action name dagtrio's specs use.
ACTION = "bench"


@attrs.frozen
class Trial:
    """A runner ready to go on one workload: ``check()`` once, then ``run()`` per timing."""

    check: Callable[[], None]
    run: Callable[[], float]


@attrs.frozen
class Runner:
    """A named way of running a workload's graph (dagtrio itself or a baseline)."""

    name: str
    #: one line for the table's notes and ``--help``
    summary: str
    prepare: Callable[[Workload, Graph], Trial]
    #: a module that must be importable (an optional extra), or None
    requires: str | None = None
    #: the ``pip install`` extra that brings ``requires``
    extra: str | None = None

    def unavailable(self) -> str | None:
        """Why this runner cannot run here (a missing optional module), or None."""
        if self.requires is None or importlib.util.find_spec(self.requires) is not None:
            return None
        return f"{self.requires} is not installed (pip install 'dagtrio[{self.extra}]')"


class PassThrough(EventHook):
    """Sees every event and answers nothing: the cost of one stage of the hook pipeline."""

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
        """Return no commands."""
        return None


# ------------------------------------------------------------------------ baselines


def _trio(scheduler: AsyncScheduler, *, ordered: bool = True) -> Callable[[Workload, Graph], Trial]:
    def prepare(workload: Workload, graph: Graph) -> Trial:
        action = workload.action_kind.async_action()
        limit = workload.max_parallel

        def check() -> None:
            check_scheduler(
                scheduler, graph, limit, action, ordered=ordered, name=scheduler.__name__
            )

        async def timed() -> float:
            start = time.perf_counter()
            await scheduler(graph, limit, action)
            return time.perf_counter() - start

        return Trial(check, lambda: trio.run(timed))

    return prepare


def _dask(
    scheduler: Callable[[dict[Any, Any], int], None],
) -> Callable[[Workload, Graph], Trial]:
    def prepare(workload: Workload, graph: Graph) -> Trial:
        action = workload.action_kind.sync_action()
        limit = workload.max_parallel
        dsk = dask_graph(graph, action)

        def check() -> None:
            check_sync_scheduler(scheduler, graph, limit, action, name=scheduler.__name__)

        def run() -> float:
            start = time.perf_counter()
            scheduler(dsk, limit)
            return time.perf_counter() - start

        return Trial(check, run)

    return prepare


# -------------------------------------------------------------------------- dagtrio


def check_report(report: RunReport, graph: Graph) -> None:
    """`AssertionError` unless ``report`` shows every node of ``graph`` run once, in order.

    Every node of ``graph`` (ids ``n<i>``) and no other is in the report, succeeded
    after exactly one attempt, has the graph's deps, and started only after each dep
    finished (`dagtrio.testing.check_run`).
    """
    if not report.success:
        counts = {status.value: count for status, count in report.counts().items()}
        raise AssertionError(f"dagtrio run failed: {counts} ({report.error})")
    expected = {node_id(node): deps for node, deps in enumerate(graph)}
    if report.nodes.keys() != expected.keys():
        missing = sorted(expected.keys() - report.nodes.keys())[:5]
        extra = sorted(report.nodes.keys() - expected.keys())[:5]
        raise AssertionError(f"dagtrio ran the wrong nodes: missing {missing}, extra {extra}")
    for node, deps in expected.items():
        record = report.nodes[node]
        if record.attempts != 1:
            raise AssertionError(f"{node} made {record.attempts} attempts")
        if set(record.deps) != {node_id(dep) for dep in deps}:
            raise AssertionError(f"{node} has deps {record.deps}, expected {deps}")
    testing.check_run(report)


def check_journal(journal: SqliteJournal, report: RunReport) -> None:
    """`AssertionError` unless ``journal`` tells the same story as ``report``.

    The run is recorded as finished with the report's verdict, every node has exactly
    one outcome record, and the report the journal rebuilds (`SqliteJournal.report`)
    has the same nodes with the same deps, status, attempts, outputs and error.
    """
    stored = journal.stored_run(report.run_id)
    if stored.info.status != "finished" or stored.info.success != report.success:
        raise AssertionError(
            f"journal: run {report.run_id} is {stored.info.status} with success "
            f"{stored.info.success}, expected finished with {report.success}"
        )
    outcomes: dict[str, int] = {}
    for _, kind, row in stored.records:
        if kind == "outcome":
            outcomes[row["node"]] = outcomes.get(row["node"], 0) + 1
    if outcomes.keys() != report.nodes.keys():
        missing = sorted(report.nodes.keys() - outcomes.keys())[:5]
        raise AssertionError(f"journal: no outcome recorded for {missing}")
    repeated = sorted(node for node, count in outcomes.items() if count != 1)[:5]
    if repeated:
        raise AssertionError(f"journal: several outcomes recorded for {repeated}")
    stored_nodes = journal.report(report.run_id).nodes
    if stored_nodes.keys() != report.nodes.keys():
        raise AssertionError("journal: its report has other nodes than the run's")
    for node, record in report.nodes.items():
        got = stored_nodes[node]
        for field in ("deps", "status", "attempts", "outputs", "error"):
            if getattr(got, field) != getattr(record, field):
                raise AssertionError(
                    f"journal: {node}.{field} is {getattr(got, field)!r}, "
                    f"the run said {getattr(record, field)!r}"
                )


def _dagtrio(*, grow: bool, journal: bool = False) -> Callable[[Workload, Graph], Trial]:
    def prepare(workload: Workload, graph: Graph) -> Trial:
        registry = ActionRegistry()
        executors: dict[str, Executor] = {}
        if workload.executor == "inline":
            registry.action(ACTION)(workload.action_kind.async_action())
        else:
            registry.action(ACTION, executor=workload.executor)(workload.action_kind.sync_action())
            if workload.executor == "process":
                from ..executors.process import ProcessExecutor

                executors["process"] = ProcessExecutor()
        hooks: list[EventHook] = []
        if grow and workload.shape == "growth":
            plan = growth(
                workload.nodes,
                k=workload.k,
                width=workload.width,
                seed=workload.seed,
                action=ACTION,
            )
            specs = plan.initial
            hooks.append(plan.hook())
        else:
            specs = graph_specs(graph, ACTION)
        hooks.extend(PassThrough() for _ in range(workload.hooks))

        readers = workload.readers
        seen: list[int] = []

        async def read(events: EventStream) -> None:
            count = 0
            async for _ in events:
                count += 1
            seen.append(count)

        async def execute(coordinator: Coordinator) -> RunReport:
            if not readers:
                return await coordinator.run(specs)
            seen.clear()
            async with coordinator.open_run(specs) as run, trio.open_nursery() as nursery:
                # Opened first thing in the body, so that each sees the whole run; the
                # body lasts until the readers end, so its streams never stop early.
                for events in [run.events() for _ in range(readers)]:
                    nursery.start_soon(read, events)
            if len(set(seen)) != 1 or seen[0] < 2 * len(specs):
                raise AssertionError(f"the readers saw {seen} events of {len(specs)} nodes")
            return run.report()

        async def timed(coordinator: Coordinator) -> tuple[float, RunReport]:
            start = time.perf_counter()
            report = await execute(coordinator)
            elapsed = time.perf_counter() - start
            if not report.success:
                raise AssertionError(f"dagtrio run failed: {report.error}")
            return elapsed, report

        if not journal:
            coordinator = Coordinator(
                registry, hooks=hooks, max_parallel=workload.max_parallel, executors=executors
            )

            def check() -> None:
                check_report(trio.run(execute, coordinator), graph)

            return Trial(check, lambda: trio.run(timed, coordinator)[0])

        def journaled(verify: bool) -> float:
            # A fresh file per run: a journal refuses a run id it holds already, and a
            # file that grows from run to run would make later repeats slower.
            with tempfile.TemporaryDirectory(prefix="dagtrio-bench-") as folder:
                store = SqliteJournal(Path(folder) / "journal.db")
                try:
                    coordinator = Coordinator(
                        registry,
                        hooks=hooks,
                        max_parallel=workload.max_parallel,
                        journal=store,
                        executors=executors,
                    )
                    elapsed, report = trio.run(timed, coordinator)
                    if verify:
                        check_report(report, graph)
                        check_journal(store, report)
                finally:
                    # Closed before the folder goes: Windows cannot delete an open file.
                    store.close()
            return elapsed

        def check_journaled() -> None:
            journaled(verify=True)

        return Trial(check_journaled, lambda: journaled(verify=False))

    return prepare


#: Every runner by name, in the order tables list them.
RUNNERS: Mapping[str, Runner] = {
    runner.name: runner
    for runner in [
        Runner(
            FLOOR,
            "one Trio task per node, max_parallel alive, one channel message each, no deps",
            _trio(trio_floor, ordered=False),
        ),
        Runner(
            "trio-minimal",
            "smallest correct Trio DAG scheduler, at its fastest: indegree counters, a ready"
            " deque, send_nowait, the channel drained before each dispatch",
            _trio(trio_minimal),
        ),
        Runner(
            "trio-pooled",
            "trio-minimal with max_parallel long-lived workers, each handed its next node"
            " by trio.lowlevel.reschedule (dagtrio reuses its workers too)",
            _trio(trio_pooled),
        ),
        Runner(
            "trio-naive",
            "the same, as first written: await send per completion, one per receive()",
            _trio(trio_naive),
        ),
        Runner(
            "graphlib",
            "stdlib graphlib.TopologicalSorter deciding what is ready, Trio tasks running it",
            _trio(graphlib_trio),
        ),
        Runner(
            "dask-threads",
            "Dask's local threaded scheduler, max_parallel threads, sync actions",
            _dask(dask_threads),
            requires="dask",
            extra="bench",
        ),
        Runner(
            "dask-sync",
            "Dask's synchronous scheduler (one task at a time), sync actions",
            _dask(dask_sync),
            requires="dask",
            extra="bench",
        ),
        Runner(
            "dagtrio",
            "dagtrio's Coordinator with --hooks pass-through hooks (growth: plus the growth hook)",
            _dagtrio(grow=True),
        ),
        Runner(
            "dagtrio-static",
            "growth only: dagtrio on the final graph given up front, same hooks otherwise",
            _dagtrio(grow=False),
        ),
        Runner(
            JOURNAL,
            "dagtrio recording the run in a SqliteJournal, a fresh file per run",
            _dagtrio(grow=True, journal=True),
        ),
    ]
}


def runner_names(
    shape: str, *, compare: bool, only: Sequence[str] | None = None, journal: bool = False
) -> list[str]:
    """The runners one invocation runs, in table order; the floor always comes first.

    Without ``only``: the floor and dagtrio (and ``dagtrio-static`` for ``growth``),
    plus every baseline with ``compare``. With ``only``: the floor and those runners
    (plus the baselines with ``compare``). ``journal`` adds ``dagtrio-journal`` and
    ``dagtrio`` in either case, so the cost of the journal can be read off one table.
    `ValueError` for an unknown name.
    """
    unknown = [name for name in only or () if name not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown runner {unknown[0]!r}; choose from {', '.join(RUNNERS)}")
    wanted = {FLOOR}
    if only:
        wanted.update(only)
    else:
        wanted.add("dagtrio")
        if shape == "growth":
            wanted.add("dagtrio-static")
    if compare:
        wanted.update(
            ["trio-minimal", "trio-pooled", "trio-naive", "graphlib", "dask-threads", "dask-sync"]
        )
    if journal:
        wanted.update(["dagtrio", JOURNAL])
    return [name for name in RUNNERS if name in wanted]
