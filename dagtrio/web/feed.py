"""The run's every event for scripts (``/api/events``), without ever slowing the run.

The page reads `board` instead, which costs the run far less; this is for programs
that want each event in the converter's form. One `Feed` per view. Its source
(`LiveSource` for a run in this process, `JournalSource` for another process's run)
pushes each event into one bounded ring, shared by every stream; each keeps only a
cursor into it, and the ring is filled only while one is open. Pushing never waits
and costs a few list writes, so the run goes at its own pace whatever the readers do.
A stream whose cursor falls out of the ring (it read too slowly, or its connection
stalled) is sent a fresh snapshot instead of the events it missed: the snapshot says
at which position it was taken, and the stream goes on from there.

A live run's events come from a tap: the coordinator calls it with each event as it
emits it, in the run's one order (before hooks see it), and never waits on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import trio

from .._errors import CommandRejectedError, RunFinishedError
from .._model.commands import ExecutorCommand
from .._model.events import ExecutionEvent
from .._runtime.run import Run
from .._state.view import GraphView
from .board import Board
from .wire import encode_event, event_times, node_row

__all__ = ["Feed", "LiveSource", "Rejected", "Source"]

#: events a browser may be behind before it gets a snapshot instead of them: enough
#: for a fast run of 20 000 nodes (three events each) to need none, as a snapshot of
#: that run is megabytes for both ends to make and read
RING = 65536


class Feed:
    """A bounded ring of a run's latest events, read by any number of browsers.

    Positions are contiguous: the ring holds the events from ``first`` to ``end - 1``,
    the slot of position ``p`` being ``p % capacity``, in two parallel lists (the
    event, its JSON once a browser needed it) rather than an object per event. The run
    calls `push` for every event it emits, so a push is a few list writes and nothing
    more: the time of an event is read when it is first encoded, from its node (when
    it started or ended, by the run's own clock) or, for other events, the clock then.
    """

    def __init__(self, capacity: int | None = None, nodes: Mapping[str, Any] | None = None) -> None:
        capacity = RING if capacity is None else capacity
        if capacity < 1:
            raise ValueError("a feed holds at least one event")
        self.capacity = capacity
        self._events: list[ExecutionEvent | None] = [None] * capacity
        self._texts: list[str | None] = [None] * capacity
        #: times a source gave with its events (a journal's records), by slot
        self._times: dict[int, tuple[float, float | None]] = {}
        self.first = 0
        self.end = 0
        self._changed = trio.Event()
        self._waiting = False
        self.closed = False
        #: streams reading now (`app._Events` counts itself in before its snapshot)
        self.readers = 0
        #: the run's nodes by id (read, never written): when a node's event happened
        #: and whether a failed node is held are read there when first encoded
        self.nodes = nodes
        #: called when the first stream opens (returns the position of the next event)
        #: and when the last one closes: a live run's tap goes on and off with them
        self.attach: Callable[[], int] | None = None
        self.detach: Callable[[], None] | None = None

    def join(self) -> None:
        """A stream opens (before its snapshot): every event from now on is kept."""
        self.readers += 1
        if self.readers == 1 and self.attach is not None:
            self.first = self.end = self.attach()

    def leave(self) -> None:
        """A stream closed: once none is open, the events kept are let go."""
        self.readers -= 1
        if self.readers:
            return
        if self.detach is not None:
            self.detach()
        self._events = [None] * self.capacity
        self._texts = [None] * self.capacity
        self._times.clear()
        self.first = self.end

    def push(self, position: int, event: ExecutionEvent) -> None:
        """Add the event at ``position`` (a tap's ``push``): never waits, never fails."""
        if not self.readers:
            # Nobody reads: a browser that comes starts from a snapshot taken then.
            self.first = self.end = position + 1
            return
        end = self.end
        if position != end:
            self.first = position  # the source skipped ahead: nothing before it is here
        slot = position % self.capacity
        self._events[slot] = event
        self._texts[slot] = None
        if self._times:
            self._times.pop(slot, None)
        self.end = end = position + 1
        if end - self.first > self.capacity:
            self.first = end - self.capacity
        if self._waiting:
            self._waiting = False
            self._changed.set()

    def extend(
        self,
        position: int,
        events: list[ExecutionEvent],
        at: float,
        started_at: float | None = None,
    ) -> None:
        """Add events from ``position`` on that happened at ``at`` (a journal record's,
        ``started_at`` being the start of the node they end)."""
        for offset, event in enumerate(events):
            self.push(position + offset, event)
            self._times[(position + offset) % self.capacity] = (at, started_at)

    def close(self) -> None:
        """No more events: every stream sends what is left, then its end."""
        self.closed = True
        self._changed.set()

    def take(self, cursor: int, limit: int) -> list[tuple[int, str]] | None:
        """``(position, JSON)`` of up to ``limit`` events from ``cursor`` on; ``None`` if
        some of them are gone (the reader fell behind and needs a snapshot)."""
        if cursor < self.first:
            return None
        stop = min(self.end, cursor + limit)
        capacity = self.capacity
        texts = self._texts
        events = self._events
        out = []
        for position in range(cursor, stop):
            slot = position % capacity
            text = texts[slot]
            if text is None:
                event = events[slot]
                if event is None:  # pragma: no cover - every kept slot has its event
                    return None
                text = texts[slot] = self._encode(event, slot)
                # The text is all any stream needs from here on: the event may go, and
                # with it the collector's work on tens of thousands of live objects.
                events[slot] = None
            out.append((position, text))
        return out

    def _encode(self, event: ExecutionEvent, slot: int) -> str:
        at, started_at, held = event_times(self.nodes, event, self._times.get(slot))
        return encode_event(event, at or time.time(), started_at, held)

    async def wait(self, cursor: int) -> None:
        """Return once there is an event at ``cursor`` or beyond, or the feed closed."""
        while not self.closed and self.end <= cursor:
            if self._changed.is_set():
                self._changed = trio.Event()
            self._waiting = True
            await self._changed.wait()


class Rejected(Exception):
    """A command the run refused (409), with its reason."""


class Source(Protocol):
    """Where a view's run comes from: a run in this process, or a journal."""

    feed: Feed
    board: Board
    read_only: bool
    kind: str

    @property
    def graph(self) -> GraphView:
        """The run's graph, as `Run.graph` shows it."""
        ...

    def snapshot(self, control: bool) -> dict[str, Any]:
        """The whole run as JSON-ready data, with the position it was taken at."""
        ...

    def run_info(self, control: bool) -> dict[str, Any]:
        """The run itself (its state, paused branches, held nodes), JSON-ready."""
        ...

    def version(self) -> Any:
        """A value that changes whenever a snapshot would: any node's row, the run's
        state (cheap to read: the board's pump reads it five times a second)."""
        ...

    def detail(self, node_id: str) -> dict[str, Any]:
        """One node's record and spec (`KeyError` if there is no such node)."""
        ...

    async def submit(self, command: ExecutorCommand) -> None:
        """Apply a command (`Rejected` if the run refuses it)."""
        ...

    async def shutdown(self, grace: float | None) -> None:
        """Shut the run down (`Rejected` if it has ended)."""
        ...

    async def follow(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Keep the feed current until the run ends, then close it."""
        ...


def snapshot_of(
    view: GraphView,
    position: int,
    run: dict[str, Any],
) -> dict[str, Any]:
    """A snapshot's JSON-ready data from a graph view."""
    record = view.record
    return {"position": position, "run": run, "nodes": [node_row(record(i)) for i in view]}


class LiveSource:
    """A run in this process: events from a tap on its pipeline, commands to `Run.submit`."""

    read_only = False
    kind = "live"

    def __init__(self, run: Run, feed: Feed, board: Board | None = None) -> None:
        self.run = run
        self.feed = feed
        self.board = board = Board() if board is None else board
        nodes = run._state.nodes
        feed.nodes = nodes
        events = _Tap(feed.push, every=True)
        feed.attach = lambda: run._watch(events)
        feed.detach = lambda: run._unwatch(events)
        board.nodes = nodes
        board.info = lambda: self.run_info(False)
        board.activity = self.version
        state = run._state
        board.moved = lambda: 2 * len(state.nodes) - state.unfinished
        changes = _Tap(board.push, every=False)
        board.attach = lambda: run._watch(changes)
        board.detach = lambda: run._unwatch(changes)

    @property
    def graph(self) -> GraphView:
        return self.run.graph

    def run_info(self, control: bool) -> dict[str, Any]:
        run = self.run
        graph = run.graph
        info: dict[str, Any] = {
            "run_id": run.run_id,
            "dag_name": run.dag_name,
            "source": self.kind,
            "read_only": False,
            "control": control,
            "paused": list(graph.paused_branches),
            "held": list(graph.held),
            "cancelled": list(graph.cancelled_branches),
            "now": time.time(),
        }
        times = run._state  # the run's clock readings; read, never written
        info["started_at"] = times.started_at
        info["finished_at"] = times.finished_at
        if run.finished:
            report = run.report()
            info.update(state="finished", success=report.success, error=report.error)
        else:
            info.update(state="idle" if run.idle else "running", success=None, error=None)
        return info

    def version(self) -> Any:
        run = self.run
        state = run._state
        # Every change to a node's row moves one of these counts (a start, an end, a
        # retry's delay, a node parked or released, a hold decided, a node added), and
        # so does every change to the run's lists; an event a tap was told of too.
        return (
            len(state.nodes),
            state.unfinished,
            state.running,
            state.delayed,
            state.parked_count,
            len(state.on_hold),
            len(state.paused),
            len(state.cancelled),
            len(state.released),  # deferred nodes let go: pending to ready, unannounced
            state.changes,
            run._tapped,
            run.finished,
            run.idle,
        )

    def snapshot(self, control: bool) -> dict[str, Any]:
        # Taken between two of the coordinator's steps, so the graph holds exactly the
        # effects of the events before this position, and none after.
        return snapshot_of(self.run.graph, self.run._tapped, self.run_info(control))

    def detail(self, node_id: str) -> dict[str, Any]:
        from .wire import node_detail

        graph = self.run.graph
        return node_detail(graph.record(node_id), graph.spec(node_id))

    async def submit(self, command: ExecutorCommand) -> None:
        try:
            await self.run.submit(command)
        except CommandRejectedError as exc:
            raise Rejected(exc.reason) from None
        except RunFinishedError as exc:
            raise Rejected(str(exc)) from None

    async def shutdown(self, grace: float | None) -> None:
        if self.run.finished:
            raise Rejected(f"run {self.run.run_id} has ended")
        await self.run.shutdown(grace)

    async def follow(self, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            # The end goes out once the run has ended, hooks' on_complete included, so
            # its verdict is the final one: the taps' own close comes before that.
            await self.run._done.wait()
        finally:
            self.board.close()
            self.feed.close()


class _Tap:
    """A feed or a board as a tap on a run (see `dagtrio._hooks.pipeline.Tap`): taps
    go on when a view's first stream opens and off when its last one closes."""

    __slots__ = ("_push", "every")

    def __init__(self, push: Callable[[int, ExecutionEvent], None], *, every: bool) -> None:
        self._push = push
        self.every = every

    def push(self, position: int, event: ExecutionEvent) -> None:
        self._push(position, event)

    def close(self) -> None:
        pass  # `LiveSource.follow` closes the feed and the board once the run has ended
