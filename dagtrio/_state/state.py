"""The state of one run: the only code that changes the graph.

`RunState` is owned by the coordinator task. Workers, hooks and applications never
touch it; they send messages that the coordinator turns into calls here. Methods are
synchronous and never block, so one command is applied whole before anything else
happens (no half-applied `AddNodes`). Each change announces itself through ``emit``, in
the order it happens, which is the run's one event order.

It is made of one class per concern, a module each: `growth`, `attempts`, `branches`,
`commands`, `rerun` and `deferral`, over the fields of `base.StateData`; what is here
ties them together (the wiring other rooms use) and reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from .._model.events import (
    ExecutionEvent,
)
from .._model.report import NodeRecord, RunReport
from .attempts import Attempts
from .base import SUCCEEDED, Rejected
from .branches import Branches
from .commands import Commands
from .deferral import Deferral
from .growth import BULK, Growth
from .node import Records
from .policy import Policy
from .protocols import MemoPolicy, Recorder
from .rerun import Rerun, RerunPlan

__all__ = ["BULK", "Rejected", "RerunPlan", "RunState"]


class RunState(Growth, Attempts, Branches, Commands, Rerun, Deferral, Policy):
    """Graph, statuses, ready queue and branch states of one run.

    ``emit`` receives every event as it happens. ``retry_later`` is called with a node
    whose next attempt must wait ``delay`` seconds, and returns the cancel scope of the
    timer it started: the coordinator owns timers.

    Everything here is written by this package only (``tests/test_ownership.py``):
    other rooms call the methods below.
    """

    # ------------------------------------------------------------------ wiring

    def listen(self, listening: bool) -> None:
        """Whether anyone receives events: while nobody does, the per-node events of
        the hot path are not even built."""
        self.listening = listening

    def attach(self, *, recorder: Recorder | None = None, memo: MemoPolicy | None = None) -> None:
        """Give the state the journal's recorder and the cache's memo, when the run has them."""
        if recorder is not None:
            self.recorder = recorder
        if memo is not None:
            self.memo = memo

    @contextmanager
    def muted(self, into: Callable[[ExecutionEvent], None] | None = None) -> Iterator[None]:
        """Announce nothing meanwhile (a replay rebuilds the graph without events), or
        hand every event to ``into`` instead (a re-run's, delivered once the run starts)."""
        emit, listening = self.emit, self.listening
        if into is None:
            self.emit, self.listening = _silence, False
        else:
            self.emit, self.listening = into, True
        try:
            yield
        finally:
            self.emit, self.listening = emit, listening

    def mute(self) -> None:
        """Announce nothing from now on: the run is over, nobody can receive."""
        self.emit, self.listening = _silence, False

    def read_only(self) -> None:
        """Nothing will run here (a journal's records are read back): take the
        resources nodes use as they come, whatever limits the run had."""
        self.checks_uses = False

    def clear_stamp(self) -> None:
        """Time moves on (the coordinator waits, or has woken): the next start or end
        reads the clock afresh (see ``stamp``)."""
        self.stamp = None

    def abandon_attempts(self) -> None:
        """The run is over: workers and retry timers never report back, count them out."""
        self.running = self.delayed = 0

    def mark_finished(self) -> None:
        """The run ended now."""
        self.finished_at = self.now()

    def restore_times(self, started_at: float, finished_at: float | None = None) -> None:
        """The run's start (and end) as the journal recorded them."""
        self.started_at = started_at
        self.finished_at = finished_at

    def restore_stop(self, reason: str) -> None:
        """A shutdown (or fail_fast) had begun: nothing starts, later nodes are cancelled,
        held nodes stay failed (their dependents' records follow)."""
        self.stopped = reason
        if self.on_hold:
            self.release_holds()

    # ------------------------------------------------------------------ reporting

    def report(
        self, *, success: bool | None = None, error: str | None = None, final: bool = False
    ) -> RunReport:
        """The run's report: a copy of where every node stands now, or, once the run is
        over and no node can change any more (``final``), a view that builds each
        node's record when asked for it.

        Building a million records at the end of a run costs as much as a fifth of the
        run, most of it in the garbage collector, for a report that is often read only
        for ``success`` and a few nodes.
        """
        nodes: Mapping[str, NodeRecord]
        if final:
            nodes = Records(self.nodes)
        else:
            nodes = {node_id: node.record() for node_id, node in self.nodes.items()}
        if success is None:
            success = all(node.status is SUCCEEDED for node in self.nodes.values())
        return RunReport(
            run_id=self.run_id,
            dag_name=self.dag_name,
            success=success,
            nodes=nodes,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=error,
        )


def _silence(event: ExecutionEvent) -> None:
    pass
