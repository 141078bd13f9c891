"""The schedulers dagtrio is measured against, and the check that each is correct.

Every scheduler here runs ``action(node)`` once for every node of a `Graph` (see
`dagtrio.bench.generators`), with at most ``max_parallel`` actions at once:

- `trio_floor`: the cost of Trio itself. One task per node, at most ``max_parallel``
  alive, one channel message each, and **no dependency tracking** (nodes start in
  index order as slots free up). Nothing that schedules a DAG on Trio can beat it.
- `trio_minimal`: the smallest correct Trio DAG scheduler, written as fast as it goes:
  indegree counters, a ready deque, completions sent with ``send_nowait`` (the
  channel holds one per running worker, so it never blocks) to one loop that takes
  every completion already queued (``receive_nowait``) before it starts more. No
  events, hooks, retries, branches or reports; the ceiling for a pure-Python Trio
  runtime that starts a task per node.
- `trio_pooled`: `trio_minimal` with long-lived workers, each handed its next node
  with `trio.lowlevel.reschedule` instead of a task per node: the ceiling for one that
  reuses its workers, as dagtrio does, and the strongest baseline here.
- `trio_naive`: the same scheduler as it is usually first written: each worker awaits
  ``send``, and the loop takes one completion per ``receive()``, so every completion
  costs two extra trips through Trio's scheduler. About half as fast as
  `trio_minimal`: a baseline that flatters whatever is compared with it.
- `graphlib_trio`: the standard library's `graphlib.TopologicalSorter` deciding what
  is ready, Trio tasks running it.
- `dask_threads` / `dask_sync`: Dask's local threaded and synchronous schedulers on
  the same graph (a dict of tasks), with plain-function actions.

`check_scheduler` / `check_sync_scheduler` run a scheduler once with a `Tracer` and
raise `AssertionError` unless every node ran exactly once, after its deps finished,
within ``max_parallel``; every runner passes that check before it is timed.

Run ``python -m dagtrio.bench.worker --help`` to time one of them in a process of
its own, as ``dagtrio bench --compare`` does.
"""

from __future__ import annotations

import graphlib
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import trio
from outcome import Value

from .generators import Graph, node_id

__all__ = [
    "AsyncScheduler",
    "Tracer",
    "check_scheduler",
    "check_sync_scheduler",
    "dask_graph",
    "dask_sync",
    "dask_threads",
    "graphlib_trio",
    "trio_floor",
    "trio_minimal",
    "trio_naive",
    "trio_pooled",
]

#: ``await scheduler(graph, max_parallel, action)`` runs ``await action(node)`` per node.
AsyncScheduler = Callable[[Graph, int, Callable[[int], Awaitable[None]]], Awaitable[None]]


async def trio_floor(
    graph: Graph, max_parallel: int, action: Callable[[int], Awaitable[None]]
) -> None:
    """Run every node in index order, ``max_parallel`` at most, ignoring dependencies."""
    count = len(graph)
    # Capacity max_parallel: at most that many workers exist, so none waits to report.
    done_send, done_receive = trio.open_memory_channel[int](max_parallel)

    async def worker(node: int) -> None:
        await action(node)
        done_send.send_nowait(node)

    async with trio.open_nursery() as nursery:
        started = running = finished = 0
        while finished < count:
            while started < count and running < max_parallel:
                nursery.start_soon(worker, started)
                started += 1
                running += 1
            await done_receive.receive()
            done = 1
            with suppress(trio.WouldBlock):
                while True:
                    done_receive.receive_nowait()
                    done += 1
            running -= done
            finished += done


async def trio_minimal(
    graph: Graph, max_parallel: int, action: Callable[[int], Awaitable[None]]
) -> None:
    """Run every node once its deps finished: indegree counters and a ready deque.

    The fastest correct form: workers report with ``send_nowait`` and the loop drains
    every queued report before it starts more (see the module docstring).
    """
    waiting = [len(deps) for deps in graph]
    dependents: list[list[int]] = [[] for _ in graph]
    for node, deps in enumerate(graph):
        for dep in deps:
            dependents[dep].append(node)
    ready = deque(node for node, count in enumerate(waiting) if count == 0)
    # Capacity max_parallel: at most that many workers exist, so send_nowait never
    # finds the channel full, and the loop never waits on anything but this channel.
    done_send, done_receive = trio.open_memory_channel[int](max_parallel)

    async def worker(node: int) -> None:
        await action(node)
        done_send.send_nowait(node)

    async with trio.open_nursery() as nursery:
        running = 0
        remaining = len(graph)
        while remaining:
            while ready and running < max_parallel:
                nursery.start_soon(worker, ready.popleft())
                running += 1
            if not running:
                raise ValueError("the graph has a cycle: nothing is ready or running")
            node = await done_receive.receive()
            while True:
                running -= 1
                remaining -= 1
                for dependent in dependents[node]:
                    waiting[dependent] -= 1
                    if waiting[dependent] == 0:
                        ready.append(dependent)
                try:
                    node = done_receive.receive_nowait()
                except trio.WouldBlock:
                    break


async def trio_pooled(
    graph: Graph, max_parallel: int, action: Callable[[int], Awaitable[None]]
) -> None:
    """`trio_minimal` with ``max_parallel`` long-lived workers instead of a task per node.

    A worker parks after each node; the loop hands it the next one with
    `trio.lowlevel.reschedule`, which costs Trio far less than starting and ending a
    task. dagtrio's own workers are reused so (see ``dagtrio._runtime.crews``), so
    this is the strongest baseline there is for it: the same scheduler, with Trio's
    cost per node as low as it goes.
    """
    waiting = [len(deps) for deps in graph]
    dependents: list[list[int]] = [[] for _ in graph]
    for node, deps in enumerate(graph):
        for dep in deps:
            dependents[dep].append(node)
    ready = deque(node for node, count in enumerate(waiting) if count == 0)
    done_send, done_receive = trio.open_memory_channel[int](max_parallel)
    idle: list[trio.lowlevel.Task] = []
    reschedule = trio.lowlevel.reschedule

    def abort(_: object) -> trio.lowlevel.Abort:
        return trio.lowlevel.Abort.SUCCEEDED  # the run is over: the parked worker ends

    async def worker(node: int) -> None:
        task = trio.lowlevel.current_task()
        while True:
            await action(node)
            done_send.send_nowait(node)
            idle.append(task)
            node = await trio.lowlevel.wait_task_rescheduled(abort)

    async with trio.open_nursery() as nursery:
        running = 0
        remaining = len(graph)
        while remaining:
            while ready and running < max_parallel:
                if idle:
                    reschedule(idle.pop(), Value(ready.popleft()))
                else:
                    nursery.start_soon(worker, ready.popleft())
                running += 1
            if not running:
                raise ValueError("the graph has a cycle: nothing is ready or running")
            node = await done_receive.receive()
            while True:
                running -= 1
                remaining -= 1
                for dependent in dependents[node]:
                    waiting[dependent] -= 1
                    if waiting[dependent] == 0:
                        ready.append(dependent)
                try:
                    node = done_receive.receive_nowait()
                except trio.WouldBlock:
                    break
        nursery.cancel_scope.cancel()


async def trio_naive(
    graph: Graph, max_parallel: int, action: Callable[[int], Awaitable[None]]
) -> None:
    """`trio_minimal` as usually first written: ``await send`` per completion, and one
    completion per ``receive()``. Kept to show what those two habits cost."""
    waiting = [len(deps) for deps in graph]
    dependents: list[list[int]] = [[] for _ in graph]
    for node, deps in enumerate(graph):
        for dep in deps:
            dependents[dep].append(node)
    ready = deque(node for node, count in enumerate(waiting) if count == 0)
    done_send, done_receive = trio.open_memory_channel[int](max_parallel)

    async def worker(node: int) -> None:
        await action(node)
        await done_send.send(node)

    async with trio.open_nursery() as nursery:
        running = 0
        remaining = len(graph)
        while remaining:
            while ready and running < max_parallel:
                nursery.start_soon(worker, ready.popleft())
                running += 1
            if not running:
                raise ValueError("the graph has a cycle: nothing is ready or running")
            node = await done_receive.receive()
            running -= 1
            remaining -= 1
            for dependent in dependents[node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)


async def graphlib_trio(
    graph: Graph, max_parallel: int, action: Callable[[int], Awaitable[None]]
) -> None:
    """Run every node once its deps finished, as `graphlib.TopologicalSorter` says."""
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for node, deps in enumerate(graph):
        sorter.add(node, *deps)
    sorter.prepare()
    ready: deque[int] = deque()
    done_send, done_receive = trio.open_memory_channel[int](max_parallel)

    async def worker(node: int) -> None:
        await action(node)
        await done_send.send(node)

    async with trio.open_nursery() as nursery:
        running = 0
        while sorter.is_active():
            ready.extend(sorter.get_ready())
            while ready and running < max_parallel:
                nursery.start_soon(worker, ready.popleft())
                running += 1
            node = await done_receive.receive()
            running -= 1
            sorter.done(node)


def dask_graph(graph: Graph, action: Callable[..., Any]) -> dict[str, tuple[Any, ...]]:
    """``graph`` as a Dask task graph: key ``n<i>`` calls ``action(i, *dep_results)``."""
    return {
        node_id(node): (action, node, *(node_id(dep) for dep in deps))
        for node, deps in enumerate(graph)
    }


def dask_threads(dsk: dict[str, tuple[Any, ...]], max_parallel: int) -> None:
    """Compute every key of ``dsk`` with Dask's threaded scheduler, ``max_parallel`` threads."""
    import dask.threaded

    dask.threaded.get(dsk, list(dsk), num_workers=max_parallel)


def dask_sync(dsk: dict[str, tuple[Any, ...]], max_parallel: int) -> None:
    """Compute every key of ``dsk`` with Dask's synchronous scheduler (one at a time)."""
    import dask.local

    dask.local.get_sync(dsk, list(dsk))


# --------------------------------------------------------------------------- checks


class Tracer:
    """Watches a scheduler's actions: which node ran, how often, when, how many at once.

    Wrap the action with `wrap_async` / `wrap_sync`, run the scheduler, then call
    `verify`. Violations are recorded rather than raised inside the action, so a
    broken scheduler is reported in one clear `AssertionError` instead of a crash deep
    in its nursery. Thread-safe, for Dask's threaded scheduler.
    """

    def __init__(self, graph: Graph, max_parallel: int, *, ordered: bool = True) -> None:
        self.graph = graph
        self.max_parallel = max_parallel
        #: False for `trio_floor`, which ignores deps by design
        self.ordered = ordered
        self.starts = [0] * len(graph)
        self.finished = [False] * len(graph)
        self.running = 0
        self.peak = 0
        self.violations: list[str] = []
        self._lock = threading.Lock()

    def begin(self, node: int) -> None:
        """Record that ``node`` starts; note it if it ran before or its deps are not done."""
        with self._lock:
            if self.starts[node]:
                self.violations.append(f"node {node} ran more than once")
            self.starts[node] += 1
            if self.ordered:
                missing = [dep for dep in self.graph[node] if not self.finished[dep]]
                if missing:
                    self.violations.append(f"node {node} started before its deps {missing}")
            self.running += 1
            self.peak = max(self.peak, self.running)

    def end(self, node: int) -> None:
        """Record that ``node`` finished."""
        with self._lock:
            self.running -= 1
            self.finished[node] = True

    def wrap_async(
        self, action: Callable[[int], Awaitable[None]]
    ) -> Callable[[int], Awaitable[None]]:
        """``action`` with `begin` before and `end` after, for Trio schedulers."""

        async def traced(node: int) -> None:
            self.begin(node)
            await action(node)
            self.end(node)

        return traced

    def wrap_sync(self, action: Callable[..., Any]) -> Callable[..., None]:
        """``action(node, *deps)`` with `begin` before and `end` after, for Dask."""

        def traced(node: int, *deps: Any) -> None:
            self.begin(node)
            action(node, *deps)
            self.end(node)

        return traced

    def verify(self, name: str = "scheduler") -> None:
        """Raise `AssertionError` naming the first problems, if there were any."""
        problems = list(self.violations)
        never = [node for node, count in enumerate(self.starts) if not count]
        if never:
            problems.append(f"{len(never)} nodes never ran (first: {never[:5]})")
        if self.peak > self.max_parallel:
            problems.append(f"{self.peak} actions ran at once (max_parallel {self.max_parallel})")
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise AssertionError(f"{name} is not correct: {'; '.join(problems[:3])}{more}")


def check_scheduler(
    scheduler: AsyncScheduler,
    graph: Graph,
    max_parallel: int,
    action: Callable[[int], Awaitable[None]],
    *,
    ordered: bool = True,
    name: str = "scheduler",
) -> None:
    """Run ``scheduler`` once under a `Tracer`; `AssertionError` unless it was correct.

    ``ordered=False`` skips the deps-before-dependents rule (for `trio_floor`).
    """
    tracer = Tracer(graph, max_parallel, ordered=ordered)
    trio.run(scheduler, graph, max_parallel, tracer.wrap_async(action))
    tracer.verify(name)


def check_sync_scheduler(
    scheduler: Callable[[dict[str, tuple[Any, ...]], int], None],
    graph: Graph,
    max_parallel: int,
    action: Callable[..., Any],
    *,
    name: str = "scheduler",
) -> None:
    """Like `check_scheduler`, for a scheduler of Dask task graphs (`dask_threads`...)."""
    tracer = Tracer(graph, max_parallel)
    scheduler(dask_graph(graph, tracer.wrap_sync(action)), max_parallel)
    tracer.verify(name)
