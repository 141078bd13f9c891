"""Real workflows' makespans: a WfCommons (WfFormat) instance, run in virtual time.

``dagtrio bench --shape workflow --workflow FILE.json`` loads a workflow instance in
WfCommons' `WfFormat <https://github.com/wfcommons/wfformat>`_ (each task's id, its
parents and its measured runtime), runs it with dagtrio under Trio's `MockClock`
(each task sleeps its runtime, so a run of hours takes milliseconds and is the same
on every machine), and reports each order's makespan divided by the **lower bound**:
the larger of the critical path (the longest chain of runtimes) and the total work
divided by the slots. No schedule beats the lower bound, so 1.00 is perfect.

Trio wakes tasks due at the same instant in an order it varies on purpose, and
workflows are full of equal runtimes (Montage has hundreds), so task ``i`` sleeps its
runtime plus ``i`` nanoseconds (`TIE_BREAK`): ties end in the file's order and every
figure is the same from run to run, at a cost of at most a microsecond per thousand
tasks.

Each task takes one slot (``max_parallel``), whatever its ``coreCount``: dagtrio
counts actions, not cores. Tasks run in the file's order where the graph allows it, so
FIFO means "in the order the workflow lists its tasks, as they become ready".
``trio-minimal`` (the smallest correct FIFO scheduler, `baselines.trio_minimal`) runs
beside, to show that dagtrio's FIFO loses nothing to its own overhead.

Instances are not shipped (they are large): generate them with the ``wfcommons``
package, as ``benchmarks/workflows.py`` does.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from .. import ActionRegistry, Coordinator, NodeCtx, NodeSpec
from .._runtime.options import Order
from .baselines import trio_minimal
from .generators import Graph

__all__ = [
    "ORDERS",
    "TIE_BREAK",
    "Workflow",
    "WorkflowError",
    "load_workflow",
    "makespan",
    "minimal_makespan",
    "parse_workflow",
]

#: The orders measured, in the table's order.
ORDERS: tuple[Order, ...] = ("fifo", "critical_path")


#: Seconds added to task ``i``'s sleep per unit of ``i``: see the module docstring.
TIE_BREAK = 1e-9


class WorkflowError(ValueError):
    """A workflow file that is not a WfFormat instance dagtrio can run, and why."""


@attrs.frozen
class Workflow:
    """A workflow as dagtrio runs it: task ids, deps by index, runtimes in seconds.

    ``deps[i]`` holds indices smaller than ``i`` (the tasks are in a topological order
    that keeps the file's order where it can), as every `Graph` in `dagtrio.bench`.
    """

    name: str
    ids: tuple[str, ...]
    deps: tuple[tuple[int, ...], ...]
    runtimes: tuple[float, ...]

    @property
    def graph(self) -> Graph:
        """The deps as a `Graph`, for the baseline schedulers."""
        return list(self.deps)

    @property
    def work(self) -> float:
        """The sum of every task's runtime, in seconds."""
        return math.fsum(self.runtimes)

    @property
    def critical_path(self) -> float:
        """The longest chain of runtimes through the graph, in seconds."""
        finish = [0.0] * len(self.ids)
        for i, deps in enumerate(self.deps):
            finish[i] = max((finish[d] for d in deps), default=0.0) + self.runtimes[i]
        return max(finish, default=0.0)

    def lower_bound(self, slots: int) -> float:
        """No schedule on ``slots`` slots finishes sooner: max(critical path, work ÷ slots)."""
        return max(self.critical_path, self.work / slots)

    def specs(self) -> list[NodeSpec]:
        """dagtrio's specs: action ``sleep``, each task's runtime as its estimate."""
        ids = self.ids
        return [
            NodeSpec("sleep", id=ids[i], deps=tuple(ids[d] for d in deps), estimate=runtime)
            for i, (deps, runtime) in enumerate(zip(self.deps, self.runtimes, strict=True))
        ]


def load_workflow(path: str | Path) -> Workflow:
    """Read a WfFormat JSON file (see `parse_workflow`); its name is the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkflowError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WorkflowError(f"{path}: not JSON: {exc}") from None
    try:
        return parse_workflow(data, name=path.stem)
    except WorkflowError as exc:
        raise WorkflowError(f"{path}: {exc}") from None


def parse_workflow(data: Any, *, name: str = "workflow") -> Workflow:
    """A `Workflow` from a WfFormat document, as `json.load` returns it.

    Reads WfFormat 1.5 and later (``workflow.specification.tasks`` for ids and
    parents, ``workflow.execution.tasks`` for ``runtimeInSeconds``) and the earlier
    form (``workflow.tasks``, or ``workflow.jobs``, each with its ``parents`` and
    ``runtimeInSeconds`` or ``runtime``). Refuses, naming the task, an unknown parent,
    a cycle, a duplicate id or a missing, negative or infinite runtime.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("workflow"), Mapping):
        raise WorkflowError("not a WfFormat instance: it has no 'workflow' object")
    workflow = data["workflow"]
    spec = workflow.get("specification")
    if isinstance(spec, Mapping):
        tasks = _task_list(spec, "tasks", "workflow.specification.tasks")
        execution = workflow.get("execution")
        if not isinstance(execution, Mapping):
            raise WorkflowError("workflow.execution is missing: no runtimes to run")
        timed = _task_list(execution, "tasks", "workflow.execution.tasks")
        runtimes = {_task_id(t, "workflow.execution.tasks"): t for t in timed}
    else:
        key = "tasks" if "tasks" in workflow else "jobs"
        tasks = _task_list(workflow, key, f"workflow.{key}")
        runtimes = {}
    order: list[str] = []
    parents: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for task in tasks:
        task_id = _task_id(task, "a task")
        if task_id in parents:
            raise WorkflowError(f"task {task_id!r} appears twice")
        raw = task.get("parents", [])
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise WorkflowError(f"task {task_id!r}: parents must be a list of task ids")
        order.append(task_id)
        parents[task_id] = list(dict.fromkeys(raw))
        seconds[task_id] = _runtime(task_id, runtimes.get(task_id, task))
    for task_id, deps in parents.items():
        for dep in deps:
            if dep not in parents:
                raise WorkflowError(f"task {task_id!r}: parent {dep!r} is not a task")
    if not order:
        raise WorkflowError("the workflow has no tasks")
    ranked = _topological(order, parents)
    index = {task_id: i for i, task_id in enumerate(ranked)}
    return Workflow(
        name=name,
        ids=tuple(ranked),
        deps=tuple(tuple(sorted(index[p] for p in parents[t])) for t in ranked),
        runtimes=tuple(seconds[t] for t in ranked),
    )


def _task_list(container: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    tasks = container.get(key)
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
        raise WorkflowError(f"{where} must be a list of task objects")
    return tasks


def _task_id(task: Mapping[str, Any], where: str) -> str:
    task_id = task.get("id", task.get("name"))
    if not isinstance(task_id, str) or not task_id:
        raise WorkflowError(f"{where}: a task has no 'id' (or 'name') string")
    return task_id


def _runtime(task_id: str, task: Mapping[str, Any]) -> float:
    value = task.get("runtimeInSeconds", task.get("runtime"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkflowError(f"task {task_id!r}: no runtimeInSeconds (a number of seconds)")
    runtime = float(value)
    if not 0.0 <= runtime < math.inf:
        raise WorkflowError(f"task {task_id!r}: runtime must be finite and ≥ 0, got {value!r}")
    return runtime


def _topological(order: Sequence[str], parents: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's order, always taking the ready task listed first in the file."""
    position = {task_id: i for i, task_id in enumerate(order)}
    waiting = {task_id: len(deps) for task_id, deps in parents.items()}
    children: dict[str, list[str]] = {task_id: [] for task_id in order}
    for task_id, deps in parents.items():
        for dep in deps:
            children[dep].append(task_id)
    ready = [position[t] for t in order if waiting[t] == 0]
    heapq.heapify(ready)
    ranked: list[str] = []
    while ready:
        task_id = order[heapq.heappop(ready)]
        ranked.append(task_id)
        for child in children[task_id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    if len(ranked) < len(order):
        stuck = next(t for t in order if waiting[t] > 0)
        raise WorkflowError(f"the tasks have a cycle (task {stuck!r} is on or after one)")
    return ranked


def _virtual(fn: Any, *args: Any) -> float:
    """Run ``fn(*args)`` under an autojumping MockClock; the virtual seconds it took."""

    async def main() -> float:
        start = trio.current_time()
        await fn(*args)
        return trio.current_time() - start

    return float(trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)))


def makespan(workflow: Workflow, slots: int, order: Order) -> float:
    """dagtrio's makespan of ``workflow`` on ``slots`` slots in ``order``, in seconds."""
    runtimes = {
        task_id: runtime + i * TIE_BREAK
        for i, (task_id, runtime) in enumerate(zip(workflow.ids, workflow.runtimes, strict=True))
    }
    registry = ActionRegistry()

    @registry.action(name="sleep")
    async def sleep(ctx: NodeCtx) -> None:
        await trio.sleep(runtimes[ctx.node_id])

    coordinator = Coordinator(registry, max_parallel=slots, order=order)

    async def run() -> None:
        report = await coordinator.run(workflow.specs())
        if not report.success:
            raise RuntimeError(f"the workflow's run did not succeed: {report.counts()}")

    return _virtual(run)


def minimal_makespan(workflow: Workflow, slots: int) -> float:
    """trio-minimal's (FIFO) makespan of ``workflow`` on ``slots`` slots, in seconds."""
    runtimes = [runtime + i * TIE_BREAK for i, runtime in enumerate(workflow.runtimes)]

    async def action(i: int) -> None:
        await trio.sleep(runtimes[i])

    return _virtual(trio_minimal, workflow.graph, slots, action)
