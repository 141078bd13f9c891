"""What every room of a run holds: the fields of `Run`, set up once.

A `Run` is put together from one class per room (`ledger`, `loop`, `crews`,
`lifecycle`), a module each, over these fields; `run.Run` adds the public handle. The
methods one room calls on another are declared here for the type checkers only.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import time
import types
import uuid
import weakref
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import trio

from .._actions.placement import Placement
from .._durable.memo import Memo
from .._durable.recorder import RunRecorder
from .._durable.records import StoredRun
from .._durable.replay import replay
from .._hooks.hook import HookContext
from .._hooks.pipeline import Outbox, Reader, Tap
from .._hooks.stream import EventStream
from .._model.events import ExecutionEvent
from .._model.report import RunReport
from .._model.spec import NodeSpec, iter_specs
from .._state.node import Node
from .._state.state import RerunPlan, RunState
from .._state.view import GraphView
from .context import LiveCtx, RunShared
from .crew import Crew
from .instruments import InstrumentFeed
from .messages import Progress
from .options import RunOptions

__all__ = ["CLEANUP_GRACE", "RunData", "holds_cancellation", "is_cancellation", "settle"]

logger = logging.getLogger("dagtrio")

#: how long hooks' ``on_complete`` may take when the run was cancelled from outside
CLEANUP_GRACE = 5.0


def is_cancellation(exc: BaseException) -> bool:
    """True for `trio.Cancelled`, or a group holding nothing else (how a nursery ends)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


def holds_cancellation(exc: BaseException) -> bool:
    """True for `trio.Cancelled`, or a group with one inside (the scope it is for takes it)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[0] is not None
    return isinstance(exc, trio.Cancelled)


async def settle(result: Any) -> Any:
    """What a hook method returned, awaited if it is awaitable: sync methods are
    accepted, as sync function hooks are."""
    if inspect.isawaitable(result):
        return await result
    await trio.lowlevel.checkpoint()
    return result


class RunData:
    """The fields of a run (see `Run` and its rooms for what they are for).

    `__init__` is long for a reason: it is the one list of every field a room may read,
    each with what it means; the work it does is in `_new_state` and `_open_records`.
    """

    def __init__(
        self,
        options: RunOptions,
        specs: Iterable[NodeSpec],
        *,
        dag_name: str,
        run_id: str | None,
        stored: StoredRun | None = None,
        rerun: RerunPlan | None = None,
    ) -> None:
        if not isinstance(dag_name, str) or not dag_name:
            raise ValueError(f"dag_name must be a non-empty string, got {dag_name!r}")
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise ValueError(f"run_id must be a non-empty string or None, got {run_id!r}")
        self._options = options
        self.run_id: str = run_id or uuid.uuid4().hex
        self.dag_name: str = dag_name
        self._hooks = options.hooks
        self._max_parallel = options.max_parallel
        self._event_limit = max(1, options.event_capacity)
        self._fail_fast = options.on_failure == "fail_fast"
        self._isolate = options.hook_errors == "isolate"
        self._app_data = options.app_data
        # Times in reports are epoch seconds that advance with Trio's clock (a MockClock
        # in tests), so durations are exact and reports stay meaningful.
        # The clock itself rather than trio.current_time(), which looks it up on every
        # call: report times are read twice per node.
        clock = self._clock = trio.lowlevel.current_clock()
        offset = time.time() - clock.current_time()
        self._outbox = Outbox()
        self._readers: list[Reader] = []
        #: watchers told of each event as it is emitted (`Run._watch`), and how many
        #: events they have been told of (a snapshot taken now stands at that count)
        self._taps: list[Tap] = []
        self._tapped = 0
        #: deferred nodes (see `Loop._release_deferred`): the pipeline position each
        #: waits for at least, the state's change count when each was last found busy,
        #: and the position of the latest event about each branch (kept from the
        #: first due deferred node on), for the branch and every branch above it
        self._defer_barriers: dict[str, int] = {}
        self._defer_checked: dict[str, int] = {}
        self._branch_events: dict[str, int] = {}
        #: `ctx.emit` calls waiting for room in the pipeline, oldest first
        self._progress_waiting: deque[Progress] = deque()
        #: events put into the pipeline so far (a reader starts at the current count)
        self._pipelined = 0
        #: events in the pipeline that have not passed every hook and reader yet
        self._unacked = 0
        #: streams the open_run body opened in its own task; closed when it leaves
        self._body_streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._body_task: trio.lowlevel.Task | None = None
        self._state = self._new_state(options, clock, offset)
        #: the coordinator's instruments, fed from the run's events like a tap
        self._instruments: InstrumentFeed | None = None
        if options.instruments:
            feed = InstrumentFeed(
                options.instruments, self.run_id, self.dag_name, self._state.nodes
            )
            self._instruments = feed
            self._taps.append(feed)
            self._state.listen(True)
        # The initial nodes are announced only once the run starts, so a reader
        # subscribing first thing in the open_run body sees the same events with or
        # without hooks.
        self._recorder: RunRecorder | None = None
        self._resumed = stored is not None
        #: a resumed run whose hooks' on_start ran and had its commands committed
        self._on_start_done = False
        #: the reason of a shutdown (or fail_fast) that a resumed run had begun
        self._resumed_stop: str | None = None
        #: events to deliver first when resuming: (record seq, event)
        self._replayed: list[tuple[int, ExecutionEvent]] = []
        #: the nodes a re-run made wait again (see `RunResumed.rerun`)
        self._rerun: tuple[str, ...] = ()
        # With a journal and listeners, each event in the pipeline has a tag: the seq of
        # the last record when it was emitted (the record it announces). The journal's
        # `handled` mark is one below the lowest tag still in the pipeline, kept as a
        # sliding-window minimum: (position, tag) of the events whose tag is below that
        # of every later one, oldest first (see `_tag` and `_events_done`).
        self._floor: deque[tuple[int, int]] = deque()
        #: events tagged so far, and of those, events through the pipeline so far
        self._tagged = 0
        self._through = 0
        self._open_records(options, specs, stored, rerun)
        self._go = trio.Event()
        self.graph = GraphView(self._state)
        """A live read-only view of the graph."""
        self._hook_ctx = HookContext(self.run_id, dag_name, self._app_data, self.graph)
        self._cache = types.MappingProxyType(self._state.outputs)
        #: what every attempt's context reads from the run (see `LiveCtx`)
        self._shared = RunShared(
            dag_name,
            self.run_id,
            self._state.outputs,
            self._cache,
            self._app_data,
            self._send_progress,
        )
        self._inbox_send, self._inbox = trio.open_memory_channel[Any](options.command_capacity)
        self._nursery: trio.Nursery | None = None
        self._grace_scope: trio.CancelScope | None = None
        #: branch -> the crew its nodes run in
        self._crews: dict[str, Crew] = {}
        #: worker tasks parked between attempts, in every crew (see `Crews._work`)
        self._parked = 0
        #: crews that had nothing left to run when last heard of, oldest first: a new
        #: branch takes one over rather than starting a task of its own (a run with a
        #: branch per tool call would start and retire a crew per node)
        self._idle_crews: deque[Crew] = deque()
        self._grace_deadline = math.inf
        self._grace = 0.0
        self._hooks_started = False
        #: set once no node may start any more: cancel(), a failing hook, the end
        self._halted = False
        self._stopping: str | None = None
        self._idle = False
        self._failure: BaseException | None = None
        self._error: str | None = None
        self._finished = False
        self._done = trio.Event()
        self._report: RunReport | None = None
        #: around the open_run body: cancelled when the run fails
        self._body_scope = trio.CancelScope()
        #: whether this process holds the run's claim in the journal (see `_release_claim`)
        self._claimed = False
        # Hooks' on_complete: the scope of the one running, whether `cancel` ended them,
        # and the deadline a `shutdown` set them.
        self._complete_scope: trio.CancelScope | None = None
        self._complete_cancelled = False
        self._complete_deadline = math.inf

    def _log_fields(self, event: str, **more: object) -> dict[str, object]:
        """The structured fields of a log record about this run (``extra=``): what
        JSON formatters and structlog's stdlib bridge show as keys (see the README's
        "Logs")."""
        return {
            "dagtrio_event": event,
            "dagtrio_run": self.run_id,
            "dagtrio_dag": self.dag_name,
            **more,
        }

    def _new_state(self, options: RunOptions, clock: trio.abc.Clock, offset: float) -> RunState:
        state = RunState(
            options.registry,
            placement=Placement(options.executors),
            dag_name=self.dag_name,
            run_id=self.run_id,
            emit=self._emit,
            retry_later=self._retry_later,
            now=lambda: clock.current_time() + offset,
            hold_failures=options.on_failure == "hold",
            order=options.order,
            limits=options.limits,
            estimates=options.estimates,
        )
        # Until a reader subscribes, only hooks listen (see RunState.listening).
        state.listen(bool(self._hooks))
        if options.cache is not None:
            state.attach(memo=Memo(options.cache, options.registry, self.run_id))
        return state

    def _open_records(
        self,
        options: RunOptions,
        specs: Iterable[NodeSpec],
        stored: StoredRun | None,
        rerun: RerunPlan | None = None,
    ) -> None:
        """Attach the journal's recorder, and build the graph: replayed from ``stored``
        when resuming (then re-run as ``rerun`` says), else from ``specs``."""
        journal = options.journal
        if stored is not None:
            assert journal is not None
            # Replaying announces nothing: the events to deliver again are chosen
            # from the journal's mark (`_announce_resumed`).
            with self._state.muted():
                self._replayed = replay(self._state, stored)
                if stored.info.status == "finished":
                    # Re-run: the run had ended (nobody waits for a decision after
                    # `cancel` or a failing hook), as its stored report says.
                    self._state.drop_holds()
            for _, kind, row in stored.records:
                if kind == "started":
                    self._on_start_done = True
                elif kind == "stop" and self._resumed_stop is None:
                    self._resumed_stop = json.loads(row["data"])
                elif kind == "rerun":
                    self._resumed_stop = None  # a re-run lifted the shutdown
            self._state.restore_times(stored.info.started_at)
            last = stored.records[-1][0] if stored.records else 0
            self._recorder = RunRecorder(journal, self.run_id, start_seq=last)
            self._recorder.handled = stored.handled
            self._recorder.nodes = len(self._state.nodes)
            self._state.attach(recorder=self._recorder)
            if rerun:
                # Its events (skips, supplied outputs) go out after RunResumed, with
                # the records they announce.
                events: list[ExecutionEvent] = []
                with self._state.muted(into=events.append):
                    self._rerun = tuple(self._state.rerun(rerun))
                self._replayed.extend((self._recorder.seq, event) for event in events)
                self._resumed_stop = None
        else:
            if journal is not None:
                self._recorder = RunRecorder(journal, self.run_id)
                self._state.attach(recorder=self._recorder)
            self._state.add_initial(iter_specs(specs))
        if self._recorder is not None:
            self._outbox.journal = self._recorder
            self._recorder.on_progress = self._journal_progress

    if TYPE_CHECKING:
        # Defined by one room, called by another.
        def _emit(self, event: ExecutionEvent) -> None: ...
        def _events_done(self, count: int) -> None: ...
        def _announce_resumed(self) -> None: ...
        async def _start_pipeline(self, nursery: trio.Nursery) -> None: ...
        async def _serve_journal(self, recorder: RunRecorder) -> None: ...
        async def _journal_progress(self) -> None: ...
        async def _coordinate(self) -> None: ...
        def _dispatch(self) -> None: ...
        def _progress(self, message: Progress) -> None: ...
        async def _send_progress(self, node_id: str, attempt: int, payload: Any) -> None: ...
        def _new_crew(self, branch: str) -> Crew: ...
        async def _work(self, crew: Crew, ctx: LiveCtx) -> None: ...
        def _retry_later(self, node: Node, delay: float) -> trio.CancelScope: ...
        def _halt(self) -> None: ...
        def _begin_shutdown(self, grace: float, reason: str) -> None: ...
        def _cancel_running(self) -> None: ...
        def _conclude(self) -> None: ...
        def _set_report(self) -> None: ...
        def _fail(self, error: BaseException, message: str | None) -> None: ...
        def _release_claim(self) -> None: ...
        def _hook_crashed(self, name: str, error: BaseException, echo: bool) -> None: ...
        def report(self) -> RunReport: ...
