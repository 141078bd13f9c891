"""Commands: applying one whole, or rejecting it having changed nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from .._errors import InvalidGraphError, InvalidSpecError
from .._model.commands import (
    AddNode,
    AddNodes,
    CancelBranch,
    EmitEvent,
    ExecutorCommand,
    PauseBranch,
    ResumeBranch,
    SetNodeInputs,
)
from .._model.events import (
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CommandRejected,
    CustomEvent,
)
from .._model.spec import (
    NodeSpec,
    validate_branch,
)
from .base import (
    Rejected,
    StateData,
)
from .growth import collector_paused

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
