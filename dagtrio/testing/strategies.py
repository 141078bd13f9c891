"""Hypothesis strategies for graphs of specs (hypothesis is imported on first use)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._hooks.hook import EventHook, HookContext
from .._model.commands import (
    AddNodes,
    CancelBranch,
    ExecutorCommand,
    PauseBranch,
    ResumeBranch,
)
from .._model.events import ExecutionEvent, NodeCompleted, RunIdle
from .._model.spec import NodeSpec

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["GrowthPlan", "HookSchedule", "dags", "growth_plans", "hook_schedules"]


def dags(
    *,
    action: str | Sequence[str] = "noop",
    min_nodes: int = 1,
    max_nodes: int = 20,
    max_deps: int = 3,
    id_prefix: str = "n",
    inputs: SearchStrategy[Mapping[str, Any]] | None = None,
) -> SearchStrategy[list[NodeSpec]]:
    """A hypothesis strategy for acyclic lists of specs, in shuffled order.

    Node ``i`` may depend on up to ``max_deps`` of the nodes before it, so the graph is
    acyclic by construction; the list is then shuffled, because a coordinator must not
    rely on specs arriving in dependency order. ``action`` is one name or several to
    pick from; ``inputs`` a strategy for each node's inputs (default: none).
    """
    from hypothesis import strategies as st

    actions = [action] if isinstance(action, str) else list(action)
    if not actions:
        raise ValueError("dags() needs at least one action name")
    if not 0 <= min_nodes <= max_nodes:
        raise ValueError(f"need 0 <= min_nodes <= max_nodes, got {min_nodes}, {max_nodes}")

    @st.composite
    def build(draw: st.DrawFn) -> list[NodeSpec]:
        count = draw(st.integers(min_nodes, max_nodes))
        specs = []
        for i in range(count):
            deps = (
                draw(st.lists(st.integers(0, i - 1), max_size=max_deps, unique=True)) if i else []
            )
            specs.append(
                NodeSpec(
                    draw(st.sampled_from(actions)),
                    id=f"{id_prefix}{i}",
                    deps=[f"{id_prefix}{d}" for d in deps],
                    inputs=draw(inputs) if inputs is not None else {},
                )
            )
        return draw(st.permutations(specs))

    return build()


@attrs.frozen
class GrowthPlan:
    """A graph that grows while it runs: what `growth_plans` generates.

    The run starts with ``initial``; as a planned node completes, the hook from
    `hook` adds its children (``children[node id]``, specs that depend on it and maybe
    on initial nodes). Children may be planned to grow in turn.
    If every node succeeds, the graph ends with `final_ids`.
    """

    initial: tuple[NodeSpec, ...]
    #: planned node id -> the specs its completion adds, in order
    children: Mapping[str, tuple[NodeSpec, ...]]

    @property
    def final_ids(self) -> frozenset[str]:
        """Every node id the run holds at the end if every node succeeds."""
        ids = {str(spec.id) for spec in self.initial}
        ids.update(str(spec.id) for specs in self.children.values() for spec in specs)
        return frozenset(ids)

    def hook(self) -> EventHook:
        """A fresh hook that carries out the plan (one per run: it remembers what it added)."""
        return _PlanHook(self.children)


class _PlanHook(EventHook):
    name = "GrowthPlan"

    def __init__(self, children: Mapping[str, tuple[NodeSpec, ...]]) -> None:
        self._left = dict(children)

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> list[ExecutorCommand]:
        if type(event) is NodeCompleted:
            specs = self._left.pop(event.node.node, None)
            if specs:
                return [AddNodes(list(specs))]
        return []


def growth_plans(
    *,
    action: str | Sequence[str] = "noop",
    max_initial: int = 8,
    max_growths: int = 6,
    max_children: int = 3,
) -> SearchStrategy[GrowthPlan]:
    """A hypothesis strategy for graphs that grow while they run (`GrowthPlan`).

    The initial graph is drawn by `dags`; then up to ``max_growths`` nodes (initial
    ones or children planned earlier, so growth nests) are each given up to
    ``max_children`` children, which depend on their parent and maybe on initial
    nodes. Run ``plan.initial`` with ``hooks=[plan.hook()]``.
    """
    from hypothesis import strategies as st

    actions = [action] if isinstance(action, str) else list(action)

    @st.composite
    def build(draw: st.DrawFn) -> GrowthPlan:
        initial = draw(dags(action=actions, min_nodes=1, max_nodes=max_initial))
        known = [str(spec.id) for spec in initial]
        initial_ids = list(known)
        children: dict[str, tuple[NodeSpec, ...]] = {}
        for g in range(draw(st.integers(0, max_growths))):
            parent = draw(st.sampled_from([i for i in known if i not in children]))
            specs = []
            for c in range(draw(st.integers(1, max_children))):
                # Extra deps on initial nodes only: they are in the graph from the
                # start, where a child planned elsewhere may never be added.
                extra = draw(st.lists(st.sampled_from(initial_ids), max_size=2, unique=True))
                deps = [parent, *(d for d in extra if d != parent)]
                spec_id = f"{parent}.g{g}c{c}"
                specs.append(NodeSpec(draw(st.sampled_from(actions)), id=spec_id, deps=deps))
            children[parent] = tuple(specs)
            known.extend(str(spec.id) for spec in specs)
            if len(children) == len(known):
                break
        return GrowthPlan(tuple(initial), children)

    return build()


@attrs.frozen
class HookSchedule:
    """Steering at generated moments: what `hook_schedules` generates.

    ``steps`` are ``(n, command)``: the command is returned when the hook sees the
    run's ``n``-th event (from 0). Pauses never strand a run: once it comes to rest
    (`RunIdle`) the hook resumes every branch it paused.
    """

    steps: tuple[tuple[int, ExecutorCommand], ...]

    def hook(self) -> EventHook:
        """A fresh hook that carries out the schedule (one per run)."""
        return _ScheduleHook(self.steps)


class _ScheduleHook(EventHook):
    name = "HookSchedule"

    def __init__(self, steps: tuple[tuple[int, ExecutorCommand], ...]) -> None:
        self._steps = steps
        self._seen = 0
        self._paused: set[str] = set()

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> list[ExecutorCommand]:
        n = self._seen
        self._seen += 1
        commands = [command for at, command in self._steps if at == n]
        for command in commands:
            if isinstance(command, PauseBranch):
                self._paused.add(command.branch)
            elif isinstance(command, CancelBranch):
                # A cancelled branch (and every branch below it) can no longer be
                # resumed: the resume at rest would be rejected.
                self._paused = {b for b in self._paused if not _within(b, command.branch)}
        if type(event) is RunIdle and self._paused:
            commands += [ResumeBranch(branch) for branch in sorted(self._paused)]
            self._paused.clear()
        return commands


def hook_schedules(
    branches: Sequence[str], *, max_steps: int = 6, max_event: int = 40, cancel: bool = True
) -> SearchStrategy[HookSchedule]:
    """A hypothesis strategy for pause/resume/cancel commands at generated moments.

    Each step targets one of ``branches`` at one of the first ``max_event`` events;
    nothing follows a cancel on its branch or below it (the run would reject it), so a
    schedule causes no `CommandRejected`. ``cancel=False`` leaves out `CancelBranch`
    (a run whose success the test asserts).
    """
    from hypothesis import strategies as st

    if not branches:
        raise ValueError("hook_schedules() needs at least one branch")
    kinds: list[type[ExecutorCommand]] = [PauseBranch, ResumeBranch]
    if cancel:
        kinds.append(CancelBranch)

    @st.composite
    def build(draw: st.DrawFn) -> HookSchedule:
        steps = []
        for _ in range(draw(st.integers(0, max_steps))):
            kind = draw(st.sampled_from(kinds))
            branch = draw(st.sampled_from(list(branches)))
            steps.append((draw(st.integers(0, max_event - 1)), kind(branch)))  # type: ignore[call-arg]
        # Nothing after a cancel reaches its branch or one below it: the run would
        # reject it, and a schedule is meant to steer, not to be refused.
        kept: list[tuple[int, ExecutorCommand]] = []
        cancelled: list[str] = []
        for at, command in sorted(steps, key=lambda step: step[0]):
            branch = command.branch  # type: ignore[attr-defined]
            if any(_within(branch, gone) for gone in cancelled):
                continue
            if isinstance(command, CancelBranch):
                cancelled.append(branch)
            kept.append((at, command))
        return HookSchedule(tuple(kept))

    return build()


def _within(branch: str, root: str) -> bool:
    """Whether ``branch`` is ``root`` or a branch below it."""
    return branch == root or branch.startswith(root + "/")
