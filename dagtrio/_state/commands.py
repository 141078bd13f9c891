"""Commands: applying one whole, or rejecting it having changed nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from .._errors import InvalidGraphError, InvalidSpecError, describe
from .._model.commands import (
    AddNode,
    AddNodes,
    CancelBranch,
    CompleteNode,
    EmitEvent,
    ExecutorCommand,
    PauseBranch,
    ResumeBranch,
    RetryNode,
    SetNodeInputs,
)
from .._model.events import (
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CommandRejected,
    CustomEvent,
    NodeRetrying,
)
from .._model.frozen import freeze
from .._model.spec import (
    NodeSpec,
    validate_branch,
)
from .base import (
    PENDING,
    READY,
    RUNNING,
    SUCCEEDED,
    Rejected,
    StateData,
)
from .growth import collector_paused
from .node import Node

__all__ = ["Commands"]


class Commands(StateData):
    """Commands: applying one whole, or rejecting it having changed nothing."""

    # ------------------------------------------------------------------ commands

    def apply(self, command: ExecutorCommand) -> None:
        """Apply one command whole, or raise `Rejected` having changed nothing."""
        if command.dag_name is not None and command.dag_name != self.dag_name:
            raise Rejected(
                f"command is for DAG {command.dag_name!r}, this run is DAG {self.dag_name!r}"
            )
        match command:
            case AddNode(spec=spec):
                self._apply_add([spec])
            case AddNodes(specs=specs):
                if not specs:
                    return
                self._apply_add(specs)
            case SetNodeInputs(node_id=node_id, inputs=inputs):
                self._set_inputs(node_id, inputs)
            case PauseBranch(branch=branch, reason=reason):
                branch = self._branch_arg(branch)
                if self._cancelled_root(branch) is not None:
                    raise Rejected(f"branch {branch!r} is cancelled")
                self._record(command)
                self._register(branch)  # so that resuming a branch above finds it
                self.paused[branch] = reason
                self.changes += 1  # a deferred node's check may give another answer
                self.emit(BranchPaused(branch, reason, branch in self.populated))
            case ResumeBranch(branch=branch):
                branch = self._branch_arg(branch)
                root = self._cancelled_root(branch)
                if root is not None:
                    raise Rejected(f"branch {branch!r} was cancelled (as part of {root!r})")
                self._record(command)
                # Resuming a branch lifts pauses on it and on every branch below it; a
                # pause on a branch above it still holds (resume that one instead).
                below = self._subtree(branch)
                if self.paused:
                    for name in below:
                        self.paused.pop(name, None)
                self.emit(BranchResumed(branch, branch in self.populated))
                self.changes += 1
                self._release_parked(branch)
            case CancelBranch(branch=branch, reason=reason):
                branch = self._branch_arg(branch)
                self._record(command)
                self.cancelled[branch] = reason
                below = self._subtree(branch)
                for name in below:
                    self.paused.pop(name, None)
                    self.parked.pop(name, None)  # cancelled below: counted out as they go
                self.emit(BranchCancelled(branch, reason, branch in self.populated))
                why = f"branch {branch!r} was cancelled" + (f": {reason}" if reason else "")
                branch_nodes = self.branch_nodes
                self.cancel_nodes(
                    [node for name in below for node in branch_nodes.get(name, ())], why
                )
                if self.on_hold:
                    # Nobody decides for a cancelled branch: its held nodes stay failed,
                    # and dependents elsewhere (the ones not cancelled just now) skip.
                    names = set(below)
                    self.release_holds(
                        [node for node in self.on_hold.values() if node.branch in names]
                    )
            case RetryNode(node_id=node_id, inputs=inputs):
                self._retry_node(command, node_id, inputs)
            case CompleteNode(node_id=node_id, outputs=outputs):
                self._complete_node(node_id, outputs)
            case EmitEvent(event=event):
                if not isinstance(event, CustomEvent):
                    raise Rejected(
                        f"only CustomEvent can be emitted, not {type(event).__name__}: "
                        "lifecycle events come from the coordinator alone"
                    )
                self._record(command)
                self.emit(event)
            case _:
                raise Rejected(f"{type(command).__name__} is not a command this run knows")

    def reject(self, command: ExecutorCommand, reason: str) -> None:
        self.emit(CommandRejected(command, reason))

    def _apply_add(self, specs: Sequence[NodeSpec]) -> None:
        with collector_paused(len(specs)):
            try:
                prepared = self.prepare(specs)
            except InvalidGraphError as exc:
                raise Rejected(str(exc)) from None
            self.add(prepared)

    def _set_inputs(self, node_id: str, inputs: object) -> None:
        node = self.nodes.get(node_id) if isinstance(node_id, str) else None
        if node is None:
            raise Rejected(f"node {node_id!r} is not in the graph")
        if node.attempts or node.status.is_final:
            raise Rejected(f"node {node_id!r} has already started ({node.status.value})")
        if not isinstance(inputs, Mapping):
            raise Rejected(
                f"node {node_id!r}: inputs must be a mapping, got {type(inputs).__name__}"
            )
        try:
            spec = attrs.evolve(node.spec, inputs=inputs)
        except InvalidSpecError as exc:
            raise Rejected(str(exc)) from None
        self._record(SetNodeInputs(node_id, spec.inputs))
        node.spec = spec

    def _decided(self, node_id: object, command: str) -> Node:
        """The node a `RetryNode` / `CompleteNode` is about."""
        node = self.nodes.get(node_id) if isinstance(node_id, str) else None
        if node is None:
            raise Rejected(f"{command}: node {node_id!r} is not in the graph")
        return node

    def _retry_node(self, command: RetryNode, node_id: str, inputs: object) -> None:
        node = self._decided(node_id, "RetryNode")
        if not node.on_hold:
            raise Rejected(f"RetryNode: node {node_id!r} {self._standing(node)}")
        if self.stopped is not None:
            raise Rejected(f"RetryNode: the run is stopping ({self.stopped})")
        spec = node.spec
        if inputs is not None:
            if not isinstance(inputs, Mapping):
                raise Rejected(
                    f"RetryNode: node {node_id!r}: inputs must be a mapping,"
                    f" got {type(inputs).__name__}"
                )
            try:
                spec = attrs.evolve(spec, inputs=inputs)
            except InvalidSpecError as exc:
                raise Rejected(f"RetryNode: {exc}") from None
            command = RetryNode(node_id, spec.inputs, dag_name=command.dag_name)
        self._record(command)
        self._unhold(node)
        node.spec = spec
        # A fresh round of try_count attempts; the count in records and events goes on.
        node.first_try = node.attempts
        node.status = PENDING
        node.finished_at = None
        self.unfinished += 1
        if self.deferring:
            self._opened(node)
        # A deferred node's new round waits for its branch to be quiet again.
        self.released.discard(node.id)
        # Like an automatic retry: the failure it retries is its error until it ends.
        self.emit(NodeRetrying(node.ref, node.attempts, node.error or "failed", 0.0))
        self._make_ready(node)

    def _complete_node(self, node_id: str, outputs: object) -> None:
        node = self._decided(node_id, "CompleteNode")
        held = node.on_hold
        if not held and not self._not_started(node):
            raise Rejected(f"CompleteNode: node {node_id!r} {self._standing(node)}")
        try:
            # First: outputs that cannot be copied read-only must change nothing.
            frozen = outputs if outputs is None else freeze(outputs)
        except Exception as exc:
            raise Rejected(
                f"CompleteNode: node {node_id!r}: outputs cannot be made read-only: {describe(exc)}"
            ) from None
        if self.recorder is not None:
            # The outputs go to the journal with the node's outcome (a "supplied" one).
            problem = self.recorder.take_outputs(node.id, outputs)
            if problem is not None:
                raise Rejected(f"CompleteNode: node {node_id!r}: {problem}")
        if held:
            self._unhold(node)
            self.unfinished += 1
            node.status = PENDING
            if self.deferring:
                self._opened(node)
        self._supply(node, frozen)

    @staticmethod
    def _not_started(node: Node) -> bool:
        """Waiting, and no attempt of this round made (a re-run starts a new round)."""
        return (
            node.status in (PENDING, READY)
            and node.attempts == node.first_try
            and node.scope is None  # no retry timer: that would be a failed attempt
        )

    def _standing(self, node: Node) -> str:
        """Why a decision does not apply to ``node``: where it stands."""
        status = node.status
        if status is RUNNING:
            return f"is running (attempt {node.attempts})"
        if status is SUCCEEDED:
            return "has succeeded already" + (" (supplied)" if node.supplied else "")
        if status.is_final:
            why = f"is {status.value}"
            if status.value == "failed":
                why += (
                    " and not held for a decision (on_failure='hold' holds failures)"
                    if not self.hold_failures
                    else " and no longer held (its branch was cancelled or the run is stopping)"
                )
            return why
        if not self._not_started(node):
            return f"is waiting to retry (attempt {node.attempts} failed) and is not held"
        return "has not failed: it is not held (CompleteNode supplies a node not yet started)"

    def _record(self, command: ExecutorCommand) -> None:
        """Journal a command about to be applied; `Rejected` (nothing changed) if the
        journal cannot store it."""
        if self.recorder is not None:
            try:
                self.recorder.command(command)
            except (TypeError, ValueError) as exc:
                raise Rejected(f"cannot be stored in the journal: {exc}") from None

    @staticmethod
    def _branch_arg(branch: object) -> str:
        try:
            return validate_branch(branch)
        except InvalidSpecError as exc:
            raise Rejected(exc.reason) from None
