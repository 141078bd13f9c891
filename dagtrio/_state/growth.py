"""Growth: checking a batch of specs against the graph, and adding it."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs

from .._actions.placement import Call
from .._actions.registry import NodeAction
from .._errors import InvalidGraphError
from .._model.events import (
    NodeCancelled,
    node_added,
)
from .._model.graph import batch_order
from .._model.spec import (
    MAIN_BRANCH,
    NodeSpec,
)
from .base import (
    CANCELLED,
    READY,
    SUCCEEDED,
    StateData,
)
from .node import Node

__all__ = ["BULK", "Growth", "collector_paused"]


BULK = 1000


@contextmanager
def collector_paused(size: int) -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch of ``size`` specs goes in.

    A big batch allocates a few objects per node, none of them garbage, in one
    synchronous burst. With the collector on, the burst sets off collection after
    collection, and full ones over the whole (growing) heap: adding a million nodes
    took 5 µs a node instead of 1.7, a fifth of the whole run. Paused, the collector
    looks at the new objects once, at its next collection. Nothing else runs in this
    thread meanwhile; other threads' garbage waits, uncollected, for as long as the
    batch takes. A collector the application had disabled stays disabled.
    """
    if size < BULK or not gc.isenabled():
        yield
        return
    # What is young now (the application's own garbage among it) is collected first,
    # so that what the end of the batch sends to the oldest generation is mostly the
    # batch's own: the young generations are small, and this is cheap.
    gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            # The batch's objects would all wait in the youngest generation, and its next
            # collection would traverse every one of them (then the middle one's would,
            # again), to find no garbage among them: 6.5 ms of a 20k-node run that takes
            # 180. Moving every tracked object to the oldest generation instead costs
            # nothing per object: freeze puts them aside, unfreeze merges them into the
            # oldest generation. They are looked at by the next full collection, as any
            # long-lived object is. Not while the application keeps objects frozen
            # itself (a pre-fork server): unfreeze would let go of its frozen ones too.
            gc.freeze()
            gc.unfreeze()
        gc.enable()


@attrs.define(slots=True)
class _Prepared:
    """A validated batch: specs with final ids, in dependency order, with branches."""

    specs: list[NodeSpec]
    order: list[int]
    branches: list[str]
    #: the auto-id counter after this batch; committed only if the batch is added
    next_auto_id: int
    #: the batch as the journal stores it (when there is a journal)
    encoded: str | None = None


class Growth(StateData):
    """Growth: checking a batch of specs against the graph, and adding it."""

    # ------------------------------------------------------------------ growth

    def prepare(self, specs: Sequence[NodeSpec]) -> _Prepared:
        """Check a batch against the graph; raise `InvalidGraphError` if any part is bad.

        Changes nothing, so a rejected batch leaves no trace.
        """
        final, batch_ids, auto = self._name(specs)
        order, branches = self._order(final, batch_ids)
        encoded = None
        if self.recorder is not None:
            encoded = self.recorder.encode_batch(final, auto)
        return _Prepared(final, order, branches, auto, encoded)

    def _name(self, specs: Sequence[NodeSpec]) -> tuple[list[NodeSpec], dict[str, int], int]:
        """The batch with every id filled in, its ids' positions, the last auto id."""
        registry = self.registry
        nodes = self.nodes
        final: list[NodeSpec] = []
        #: batch id -> position in the batch
        batch_ids: dict[str, int] = {}
        # Ids the batch names itself, wherever they stand in it: an auto id must not take
        # one that a later spec of the same batch claims (gathered at the first spec
        # without an id: most batches name every node).
        explicit: set[str | None] | None = None
        auto = self._next_auto_id
        registered: set[str] = set()  # action names already found in the registry
        placements: set[tuple[str, str]] = set()  # (action, executor) pairs found good
        used: set[str] = set()  # actions whose registered uses were found good
        for spec in specs:
            if spec.action not in registered:
                if spec.action not in registry:
                    known = ", ".join(sorted(registry)) or "none"
                    raise InvalidGraphError(
                        spec.id, f"unknown action {spec.action!r} (registered: {known})"
                    )
                registered.add(spec.action)
                self._check_placement(spec, None, placements)
            if spec.executor is not None and (spec.action, spec.executor) not in placements:
                self._check_placement(spec, spec.executor, placements)
            if spec.uses is not None:
                self._check_uses(spec, spec.uses)
            elif spec.action not in used:
                self._check_uses(spec, registry.uses(spec.action))
                used.add(spec.action)
            if spec.id is None:
                if explicit is None:
                    explicit = {spec.id for spec in specs if spec.id is not None}
                while True:
                    auto += 1
                    node_id = f"{spec.action}-{auto}"
                    if node_id not in nodes and node_id not in explicit:
                        break
                spec = attrs.evolve(spec, id=node_id)
                explicit.add(node_id)
            elif spec.id in nodes:
                raise InvalidGraphError(spec.id, "id is already in the graph")
            elif spec.id in batch_ids:
                raise InvalidGraphError(spec.id, "id appears twice in the batch")
            batch_ids[spec.id] = len(final)  # type: ignore[index]
            final.append(spec)
        return final, batch_ids, auto

    def _check_uses(self, spec: NodeSpec, uses: Mapping[str, int]) -> None:
        """Refuse ``spec`` if it uses a resource the run has no limit for, or more of
        one than its limit: it could never start."""
        if not self.checks_uses:
            return
        for name, amount in uses.items():
            limit = self.limits.get(name)
            if limit is None:
                known = ", ".join(sorted(self.limits)) or "none"
                raise InvalidGraphError(
                    spec.id,
                    f"uses {name!r}, which the coordinator has no limit for (limits: {known});"
                    f" give it one, e.g. Coordinator(limits={{{name!r}: {amount}}})",
                )
            if amount > limit:
                raise InvalidGraphError(
                    spec.id,
                    f"uses {amount} of {name!r}, more than its limit of {limit}: it could"
                    " never start",
                )

    def _check_placement(
        self, spec: NodeSpec, name: str | None, placements: set[tuple[str, str]]
    ) -> None:
        """Refuse ``spec`` if its action cannot run on executor ``name`` (``None``: the
        action's own)."""
        action = self.registry.get(spec.action)
        if name is None:
            name = getattr(action, "executor", None)
            if name is None:
                return
        why = self.placement.refuse(name, action)
        if why is not None:
            raise InvalidGraphError(spec.id, why)
        placements.add((spec.action, name))

    def _order(
        self, final: list[NodeSpec], batch_ids: dict[str, int]
    ) -> tuple[list[int], list[str]]:
        """Positions of the batch in dependency order, and the branch of each spec (its
        own, else its first dep's); raise on a bad or cyclic dep."""
        nodes = self.nodes
        # A batch that lists every dep before its dependents (generated graphs, most
        # planners) is already in dependency order and cannot hold a cycle: take it as it
        # is and spare the graph algorithm, the largest cost of a big batch. Its
        # branches follow in the same pass (a first dep in the batch comes earlier).
        in_order = True
        branches: list[str] = []
        add_branch = branches.append
        for position, spec in enumerate(final):
            deps = spec.deps
            for dep in deps:
                if dep == spec.id:
                    raise InvalidGraphError(spec.id, "depends on itself")
                dep_position = batch_ids.get(dep)
                if dep_position is None:
                    if dep not in nodes:
                        raise InvalidGraphError(spec.id, f"dep {dep!r} is not in the graph")
                elif dep_position > position:
                    in_order = False
            if not in_order:
                continue
            if spec.branch is not None:
                add_branch(spec.branch)
            elif deps:
                first = batch_ids.get(deps[0])
                add_branch(nodes[deps[0]].branch if first is None else branches[first])
            else:
                add_branch(MAIN_BRANCH)
        if in_order:
            return list(range(len(final))), branches
        order = batch_order(final)
        if order and isinstance(order[0], str):
            # batch_order walks dep -> dependent; say it as "x depends on y".
            cycle = list(reversed(order))
            raise InvalidGraphError(
                str(cycle[0]), "deps form a cycle: " + " -> ".join(map(str, cycle))
            )
        return order, self._branches(final, order, batch_ids)  # type: ignore[arg-type,return-value]

    def _branches(
        self, final: list[NodeSpec], order: list[int], batch_ids: dict[str, int]
    ) -> list[str]:
        """The branch of each spec of a batch taken in ``order``: its own, else its
        first dep's."""
        nodes = self.nodes
        branches: list[str] = [MAIN_BRANCH] * len(final)
        for i in order:
            spec = final[i]
            if spec.branch is not None:
                branches[i] = spec.branch
            elif spec.deps:
                first = batch_ids.get(spec.deps[0])
                branches[i] = nodes[spec.deps[0]].branch if first is None else branches[first]
        return branches

    def add(self, prepared: _Prepared) -> None:
        """Insert a batch checked by `prepare` (with no change to the graph in between)."""
        self._next_auto_id = prepared.next_auto_id
        nodes = self.nodes
        dag = self.dag_name
        registry = self.registry
        emit = self.emit
        listening = self.listening
        memo = self.memo
        branch_nodes = self.branch_nodes
        limits = self.limits
        #: action name, or (action, executor) -> the action and its call there
        actions: dict[Any, tuple[NodeAction, Call]] = {}
        batch: list[Node] = []
        if self.recorder is not None:
            assert prepared.encoded is not None  # `prepare` encodes when there is a recorder
            self.recorder.add(prepared.encoded, len(prepared.specs))
        last_branch: str | None = None
        on_branch: list[Node] = []
        placement = self.placement
        for spec, branch in zip(prepared.specs, prepared.branches, strict=True):
            key = spec.action if spec.executor is None else (spec.action, spec.executor)
            placed = actions.get(key)
            if placed is None:
                action = registry.get(spec.action)
                name = spec.executor
                if name is None:
                    name = getattr(action, "executor", None)
                placed = actions[key] = (action, placement.place(name, action)[0])
            node = Node(spec, dag, branch, *placed)
            if limits:
                node.uses = registry.uses(spec.action) if spec.uses is None else spec.uses
            if spec.priority and not self.ranked:
                self.rank_ready()
            if memo is not None:
                cached_call = memo.wrap(node)
                if cached_call is not None:
                    node.call = cached_call
            nodes[node.id] = node
            if branch != last_branch:  # batches mostly keep to one branch
                last_branch = branch
                found = branch_nodes.get(branch)
                if found is None:
                    found = branch_nodes[branch] = []
                    self._populate(branch)
                on_branch = found
            on_branch.append(node)
            batch.append(node)
            if listening:
                emit(node_added(node.ref, spec, branch))
        self.unfinished += len(batch)
        if self.deferring:
            for node in batch:
                self._opened(node)
        if self.critical_path:
            self._rank_batch(batch, prepared.order)
        self._wire(batch, prepared.order)

    def _wire(self, batch: list[Node], order: Sequence[int]) -> None:
        """Settle each new node of a batch, in dependency order: cancelled with its
        branch, skipped for a failed dep, waiting on its deps, or ready."""
        nodes = self.nodes
        emit = self.emit
        ready = self.ready
        # Whether a branch is cancelled, asked once per branch of the batch (most
        # batches keep to one); a node that may go straight into the ready queue is
        # one that neither defers nor has a paused branch to be parked for.
        doomed_branch: dict[str, str | None] = {}
        plain = not self.paused and not self.ranked
        for i in order:
            node = batch[i]
            branch = node.branch
            if branch in doomed_branch:
                why = doomed_branch[branch]
            else:
                cancelled = self._cancelled_root(branch)
                why = self.stopped or (
                    None if cancelled is None else f"branch {cancelled!r} was cancelled"
                )
                doomed_branch[branch] = why
            if why is not None:
                self._finish(node, CANCELLED, why)
                emit(NodeCancelled(node.ref, why))
                continue
            # One pass over the deps: wait on each that has not succeeded. A dep that
            # is final otherwise (rare) dooms the node: the waits already taken are
            # taken back, and it is skipped instead.
            waiting = 0
            for dep_id in node.spec.deps:
                dep = nodes[dep_id]
                status = dep.status
                if status is SUCCEEDED:
                    continue
                if status.is_final and not dep.on_hold:
                    self._unwait(node)
                    self._skip(node, dep)
                    break
                waiting += 1
                dependents = dep.dependents
                if dependents:
                    dependents.append(node)
                else:
                    dep.dependents = [node]
            else:
                if waiting:
                    node.waiting = waiting
                elif plain and not node.spec.defer:
                    node.status = READY
                    ready.append(node)
                else:
                    self._make_ready(node)

    def _unwait(self, node: Node) -> None:
        """Take ``node`` off the dependents lists `_wire` put it on (it is doomed)."""
        nodes = self.nodes
        for dep_id in node.spec.deps:
            dependents = nodes[dep_id].dependents
            if dependents and dependents[-1] is node:
                dependents.pop()

    def announce(self) -> None:
        """Emit `NodeAdded` for every node so far: the initial ones, as the run starts.

        The initial specs are added (and checked) before anyone can listen, while
        nothing else can happen yet, so announcing them later in one go is the same
        stream a listener present all along would have seen.
        """
        emit = self.emit
        # A burst of two objects per node that all stay queued until hooks take them:
        # with the collector on, collection after collection over the growing heap.
        with collector_paused(len(self.nodes)):
            for node in self.nodes.values():
                emit(node_added(node.ref, node.spec, node.branch))

    def add_initial(self, specs: Sequence[NodeSpec]) -> None:
        """Validate and insert the run's first specs; `InvalidGraphError` before anything runs.

        Emits nothing: `announce` tells of them once the run starts.
        """
        listening, self.listening = self.listening, False
        try:
            with collector_paused(len(specs)):
                self.add(self.prepare(specs))
        finally:
            self.listening = listening
