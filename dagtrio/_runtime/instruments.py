"""Instruments: synchronous callbacks that watch a run, for metrics, traces and logs.

An `Instrument` hears of the run's start and end, of every attempt's start and end (with
its status and how it ended), of retries and of every command the run applied. Unlike a
hook it cannot steer the run and is never waited for: it is called in the coordinator's
own step, at the moment the thing happens, so it must only note it (count, start or end
a span, log). One that raises is logged on the ``dagtrio`` logger and detached; the run
goes on as if it had never been there.

The run feeds them from its events (a `Tap` that needs every event), so that what an
instrument hears and what a hook or reader sees are the same story in the same order. A
run without instruments builds nothing for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from .._model.events import (
    ExecutionEvent,
    NodeCancelled,
    NodeCompleted,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
)
from .._model.spec import Ending, NodeStatus

if TYPE_CHECKING:
    from .._model.commands import ExecutorCommand
    from .._model.report import RunReport
    from .._state.node import Node

__all__ = ["Attempt", "Instrument", "InstrumentFeed"]

logger = logging.getLogger("dagtrio")


class Attempt(NamedTuple):
    """One attempt of one node, as instruments hear of it: a value (keep it as a key).

    A named tuple rather than a frozen attrs class like dagtrio's other values: one is
    made per attempt for every run with instruments, and a tuple is made in a third
    of the time.
    """

    #: the run it belongs to
    run_id: str
    #: the run's DAG
    dag_name: str
    #: the node's id
    node_id: str
    #: the node's action
    action: str
    #: the node's branch path (``main`` unless its spec names one)
    branch: str
    #: 1 for the first attempt, 2 for the first retry, …
    number: int


class Instrument:
    """Watches runs with synchronous callbacks; subclass it and override what you need.

    Pass instances as ``Coordinator(instruments=[...])``. Every method is called in the
    coordinator's step, in the run's one order of events, and must return at once: no
    I/O that can block, no awaiting (hand slow work to a queue of your own). An
    exception is logged and detaches the instrument from that run; it never fails the
    run. Each method does nothing by default.

    For one attempt the calls are `attempt_started`, then exactly one
    `attempt_finished` (and, if the node will try again, `attempt_retrying` right
    after it), all between `run_started` and `run_finished`. A command's own effects
    are told before it is (a `CancelBranch` ends its running attempts, then
    `command_applied`). Methods are looked up on the instrument's class, once per run.
    A run resumed from a journal starts again from what the journal kept, so an
    attempt the crash interrupted is told again, with the same `Attempt` value.
    """

    def run_started(self, run_id: str, dag_name: str) -> None:
        """A run starts (or a resumed run starts again), before any of its attempts."""

    def run_finished(self, report: RunReport) -> None:
        """The run ended; ``report`` is its final report. Called once, last."""

    def attempt_started(self, attempt: Attempt) -> None:
        """An attempt of a node starts."""

    def attempt_finished(
        self, attempt: Attempt, status: NodeStatus, ended: Ending, error: str | None
    ) -> None:
        """An attempt ended: ``status`` is ``SUCCEEDED``, ``FAILED`` (it may be retried)
        or ``CANCELLED``; ``ended`` says what became of the work itself: ``finished``
        (it is over: it returned, raised, or was cancelled in its Trio task), ``killed``
        (its worker process was stopped) or ``abandoned`` (a thread, which cannot be
        stopped, left to finish on its own); ``error`` is why it failed or was
        cancelled."""

    def attempt_retrying(self, attempt: Attempt, error: str, delay: float) -> None:
        """The failed ``attempt`` will be followed by another in ``delay`` seconds."""

    def command_applied(self, run_id: str, command: ExecutorCommand, source: str | None) -> None:
        """The run applied ``command``: from the hook named ``source``, or from
        `Run.submit` (``source`` None). Rejected commands are not applied (see
        `CommandRejected`)."""


_ATTEMPT_METHODS = ("attempt_started", "attempt_finished", "attempt_retrying")
_METHODS = ("run_started", "run_finished", "command_applied", *_ATTEMPT_METHODS)


class InstrumentFeed:
    """A run's instruments, fed from its events as a `Tap` that needs every event."""

    every = True

    def __init__(
        self, instruments: Iterable[Instrument], run_id: str, dag_name: str, nodes: dict[str, Node]
    ) -> None:
        self.instruments = list(instruments)
        self.run_id = run_id
        self.dag_name = dag_name
        self._nodes = nodes
        #: the running attempt of each node that has one, by node id
        self._open: dict[str, Attempt] = {}
        self._started = False
        self._finished = False
        self._bind()

    def _bind(self) -> None:
        # Only the methods an instrument overrides are called: a no-op default costs
        # nothing, and attempts are not even followed unless someone listens to them.
        self._callbacks: dict[str, list[tuple[Instrument, Callable[..., None]]]] = {
            name: [
                (instrument, getattr(instrument, name))
                for instrument in self.instruments
                if getattr(type(instrument), name) is not getattr(Instrument, name)
            ]
            for name in _METHODS
        }
        self._follows = any(self._callbacks[name] for name in _ATTEMPT_METHODS)

    def _call(self, method: str, *args: object) -> None:
        callbacks = self._callbacks[method]
        for i, (instrument, callback) in enumerate(callbacks):
            try:
                callback(*args)
            except Exception:
                logger.exception(
                    "instrument %s failed in %s on run %s; detached",
                    type(instrument).__name__,
                    method,
                    self.run_id,
                    extra=self._fields(instrument),
                )
                if instrument in self.instruments:
                    self.instruments.remove(instrument)
                    self._bind()
            except BaseException:
                # KeyboardInterrupt or SystemExit in one instrument ends the run, but
                # the others still hear of this, or a span they opened never closes.
                for other, rest in callbacks[i + 1 :]:
                    try:
                        rest(*args)
                    except Exception:
                        logger.exception(
                            "instrument %s failed in %s on run %s",
                            type(other).__name__,
                            method,
                            self.run_id,
                            extra=self._fields(other),
                        )
                raise

    def _fields(self, instrument: Instrument) -> dict[str, str]:
        return {
            "dagtrio_event": "instrument_failed",
            "dagtrio_run": self.run_id,
            "dagtrio_dag": self.dag_name,
            "dagtrio_instrument": type(instrument).__name__,
        }

    def started(self) -> None:
        self._started = True
        self._call("run_started", self.run_id, self.dag_name)

    def applied(self, command: ExecutorCommand, source: str | None) -> None:
        if self._callbacks["command_applied"]:
            self._call("command_applied", self.run_id, command, source)

    def push(self, position: int, event: ExecutionEvent) -> None:
        if self._follows:
            handle = self._handlers.get(type(event))
            if handle is not None:
                handle(self, event)

    def _node_started(self, event: NodeStarted) -> None:
        node = self._nodes[event.node.node]
        attempt = Attempt(
            self.run_id, self.dag_name, node.id, node.spec.action, node.branch, event.attempt
        )
        self._open[node.id] = attempt
        self._call("attempt_started", attempt)

    def _node_completed(self, event: NodeCompleted) -> None:
        self._end(event.node.node, NodeStatus.SUCCEEDED, None, None)

    def _node_failed(self, event: NodeFailed) -> None:
        self._end(event.node.node, NodeStatus.FAILED, event.error, event.ended)

    def _node_retrying(self, event: NodeRetrying) -> None:
        attempt = self._end(event.node.node, NodeStatus.FAILED, event.error, event.ended)
        if attempt is not None:
            self._call("attempt_retrying", attempt, event.error, event.delay)

    def _node_cancelled(self, event: NodeCancelled) -> None:
        self._end(event.node.node, NodeStatus.CANCELLED, event.reason, event.ended)

    _handlers: ClassVar[dict[type, Callable[[Any, Any], None]]] = {
        NodeStarted: _node_started,
        NodeCompleted: _node_completed,
        NodeFailed: _node_failed,
        NodeRetrying: _node_retrying,
        NodeCancelled: _node_cancelled,
    }

    def _end(
        self, node_id: str, status: NodeStatus, error: str | None, ended: Ending | None
    ) -> Attempt | None:
        attempt = self._open.pop(node_id, None)
        if attempt is not None:
            self._call("attempt_finished", attempt, status, ended or "finished", error)
        return attempt

    def close(self) -> None:
        """The run's events ended (`run_finished` comes with the final report)."""

    def finished(self, report: RunReport) -> None:
        if self._finished or not self._started:
            return  # (a run torn down before it started never began for them)
        self._finished = True
        # Attempts the run's teardown left without an event (it was cancelled from
        # outside, and stopped telling): they end with the run, as the report says.
        for node_id, attempt in list(self._open.items()):
            record = report.nodes.get(node_id)
            status = record.status if record is not None else NodeStatus.CANCELLED
            if status in (NodeStatus.RUNNING, NodeStatus.PENDING, NodeStatus.READY):
                status = NodeStatus.CANCELLED
            node = self._nodes.get(node_id)
            ended = (node.ended if node is not None else None) or "abandoned"
            self._call("attempt_finished", attempt, status, ended, record.error if record else None)
        self._open.clear()
        self._call("run_finished", report)
