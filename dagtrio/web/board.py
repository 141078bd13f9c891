"""The page's picture of a run, kept current by one pump that costs the run next to nothing.

A person cannot read tens of thousands of events a second, and a page sent each of
them spends more of the machine than the run itself: a fast run emits three events per
node, and building, encoding, sending and applying them all halved its speed. So the
page is not sent the run's events as they happen. While at least one page is open, one
pump per view reads the graph itself, every `PACE` seconds (less often when the last
update was big, `ROW_TIME`, or the run is faster than a person follows, `FAST`), and
makes one update of what changed since its last look:

- the nodes added since (each a row, as in a snapshot);
- the nodes whose status or attempt moved (a short row each: the node's place in the
  graph's order, a status code, the attempt, start and end in milliseconds after
  ``t0``; error and the like beside, by id, when set);
- the run's own state (paused, held and cancelled branches and nodes, idle or not);
- the events the graph does not tell, in the run's order: a failure's error, a retry,
  a cancel, a skip, a branch paused or resumed, a rejected command, a hook's failure, a
  progress message, a custom event.

Every page shares the same text. The run builds no event for it: the page's tap asks
only for the events the run builds anyway (`Tap.every` false), so the run's hot path
stays as if nobody watched. A page's snapshot is taken right after a look (`settle`),
so each update it reads says all that changed since what it holds. A page that fell
more than `KEEP` updates behind gets a fresh snapshot instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any

import trio

from .._model.events import ExecutionEvent, NodeAdded, NodeCompleted, NodeStarted
from .._model.spec import NodeStatus
from .wire import dump, encode_event, event_times

__all__ = ["KEEP", "PACE", "STATUSES", "Board"]

_log = logging.getLogger("dagtrio.web")

#: the pump looks at the graph at most this often (five updates a second are live to a
#: person), and less often when a look costs more: at most 1/SPREAD of the run's time
PACE = 0.2
SPREAD = 20
#: while more than FAST nodes a second end or join, a person follows the counts, not
#: each node: the page gets one update every BUSY_PACE seconds instead
FAST = 20_000
BUSY_PACE = 1.0
#: and it waits at least this long per row of its last update: about twice what
#: headless Chromium took here to apply a row and draw it, so that a page is busy at
#: most half the time however fast the run (and a run of tens of thousands of nodes
#: a second gets a few big updates rather than many)
ROW_TIME = 2e-5
#: updates kept for pages that read slowly, and the bytes they may take together
KEEP = 64
KEEP_BYTES = 64 << 20
#: events the pump reads from the graph instead: a tap is told of them only when
#: someone else made the run build them
_SCANNED = frozenset({NodeAdded, NodeStarted, NodeCompleted})
#: statuses a node never leaves within its run (a failed one may be held, and decided)
_FINAL = frozenset({NodeStatus.SUCCEEDED, NodeStatus.CANCELLED, NodeStatus.SKIPPED})
#: an update's status codes: the statuses in `NodeStatus`'s order (pending is 0)
STATUSES = tuple(NodeStatus)
_CODE = {status: code for code, status in enumerate(STATUSES)}


def _nothing() -> Any:
    return None


class Board:
    """What every open page of one view is sent: snapshots, then the pump's updates.

    ``nodes`` is the run's graph by id (the live run's own nodes, or those a journal
    replays into); it is read, never written. ``info`` gives the run's own state as
    JSON-ready data, ``activity`` a cheap value that changes whenever any node's row
    or the run's state does (a look is skipped while it stays the same), ``moved`` a
    count that grows by one for each node that ends or joins (how fast the run goes).
    ``attach`` and ``detach`` are called when the first page opens and the last one
    closes (a live run's tap goes on and off with them).
    """

    def __init__(
        self,
        nodes: Mapping[str, Any] | None = None,
        info: Callable[[], dict[str, Any]] = dict,
        activity: Callable[[], Any] = _nothing,
        moved: Callable[[], int] = int,
    ) -> None:
        self.nodes: Mapping[str, Any] = {} if nodes is None else nodes
        self.info = info
        self.activity = activity
        self.moved = moved
        self.attach: Callable[[], object] | None = None
        self.detach: Callable[[], None] | None = None
        self.readers = 0
        #: updates kept at most (`KEEP`)
        self.keep = KEEP
        #: updates made so far; a snapshot says the last one it includes
        self.seq = 0
        #: updates from this one on (exclusive) are kept; a cursor before it is behind
        self.base = 0
        self.closed = False
        #: the origin of an update's times, in the run's epoch seconds
        self.t0 = float(math.floor(time.time()))
        self._updates: deque[tuple[int, str]] = deque()
        self._bytes = 0
        self._events: list[str] = []
        # The nodes that may still change, with their status and attempt at the last look.
        self._index: list[int] = []
        self._open: list[Any] = []
        self._status: list[Any] = []
        self._attempts: list[int] = []
        self._known = 0
        self._rows = 0
        self._seen: Any = None
        self._changed = trio.Event()
        self._wanted = trio.Event()

    # -------------------------------------------------------------- pages

    def join(self) -> None:
        """A page opens (before its snapshot): the first one starts the pump's looks."""
        self.readers += 1
        if self.readers > 1:
            return
        if self.attach is not None:
            self.attach()
        self._baseline()
        self._wanted.set()

    def leave(self) -> None:
        """A page closed: once none is open, nothing is kept and nothing looked at."""
        self.readers -= 1
        if self.readers:
            return
        self._wanted = trio.Event()
        if self.detach is not None:
            self.detach()
        self._index, self._open, self._status, self._attempts = [], [], [], []
        self._events = []
        self._updates.clear()
        self._bytes = 0
        self.base = self.seq

    def take(self, cursor: int) -> list[str] | None:
        """The updates after ``cursor`` (a snapshot's or an update's ``seq``), or
        ``None`` if some of them are gone: the page needs a snapshot."""
        if cursor < self.base:
            return None
        if cursor >= self.seq:
            return []
        updates = self._updates
        skip = len(updates) - (self.seq - cursor)
        return [text for _, text in islice(updates, skip, None)]

    async def wait(self, cursor: int) -> None:
        """Return once there is an update after ``cursor``, or the board closed."""
        while not self.closed and self.seq <= cursor:
            if self._changed.is_set():
                self._changed = trio.Event()
            await self._changed.wait()

    def close(self) -> None:
        """The run ended (or the view closes): a last update, then every page's end."""
        if self.closed:
            return
        if self.readers:
            self._look_safely()
        self.closed = True
        self._changed.set()
        self._wanted.set()

    def settle(self) -> None:
        """Before a page's snapshot: a look now, so that the snapshot stands exactly
        where an update does, and the next update says all that changed after it (a
        node that moved and moved back since the last look would otherwise be shown
        as it was in between)."""
        if self.readers:
            self._look_safely()

    def restart(self) -> None:
        """The graph changed in a way a look does not follow (a journal's re-run set
        finished nodes waiting again): every page starts over from a fresh snapshot."""
        if self.readers:
            self._baseline()
            self._changed.set()

    # -------------------------------------------------------------- the run's side

    def push(self, position: int, event: ExecutionEvent) -> None:
        """A tap's ``push``: keep an event the graph does not tell, for the next update."""
        if not self.readers or type(event) in _SCANNED:
            return
        at, started_at, held = event_times(self.nodes, event, None)
        self._events.append(encode_event(event, at or time.time(), started_at, held))

    def extend(self, events: list[ExecutionEvent], at: float, started_at: float | None) -> None:
        """Events a journal's record announced, which happened at ``at``."""
        if not self.readers:
            return
        for event in events:
            if type(event) not in _SCANNED:
                self._events.append(encode_event(event, at, started_at))

    async def pump(self) -> None:
        """Look at the graph while pages are open, until the board closes."""
        while not self.closed:
            if not self.readers:
                await self._wanted.wait()
                continue
            started = time.perf_counter()
            self._look_safely()
            spent = time.perf_counter() - started
            looked, moved = trio.current_time(), self.moved()
            await trio.sleep(max(PACE, spent * SPREAD, self._rows * ROW_TIME))
            # A browser on the run's own machine pays per row, and five blurred updates
            # a second of a run that fast show a person no more than one.
            while self.readers and not self.closed:
                elapsed = trio.current_time() - looked
                if elapsed >= BUSY_PACE or self.moved() - moved < FAST * elapsed:
                    break
                await trio.sleep(PACE)

    # -------------------------------------------------------------- looking

    def _look_safely(self) -> None:
        try:
            self._look()
        except Exception:
            # A bug of the view's own must not take the application down with it: the
            # pages are told the view ended, and the run goes on.
            _log.exception("the browser view stopped following its run")
            self.closed = True
            self._changed.set()
            self._wanted.set()

    def _baseline(self) -> None:
        """What every node is now: the next look says what changed from here."""
        nodes = list(self.nodes.values())
        self._known = len(nodes)
        kept = [(i, node) for i, node in enumerate(nodes) if node.status not in _FINAL]
        self._index = [i for i, _ in kept]
        self._open = [node for _, node in kept]
        self._status = [node.status for node in self._open]
        self._attempts = [node.attempts for node in self._open]
        self._events = []
        self._seen = self.activity()
        self.seq += 1
        self.base = self.seq
        self._updates.clear()
        self._bytes = 0

    def _look(self) -> None:
        seen = self.activity()
        if seen == self._seen and not self._events and len(self.nodes) == self._known:
            return
        self._seen = seen
        t0 = self.t0
        code = _CODE
        changed: list[Any] = []
        put = changed.append
        extra: dict[str, Any] = {}
        index: list[int] = []
        open_nodes: list[Any] = []
        statuses: list[Any] = []
        attempts: list[int] = []
        # The hot loop of a look: a few comparisons per node that may still change, and
        # five plain values (no object) for each that did.
        for i, node, status, attempt in zip(
            self._index, self._open, self._status, self._attempts, strict=True
        ):
            now, tries = node.status, node.attempts
            if now is not status or tries != attempt:
                start, end = node.started_at, node.finished_at
                put(i)
                put(code[now])
                put(tries)
                put(None if start is None else int((start - t0) * 1000))
                put(None if end is None else int((end - t0) * 1000))
                if node.error is not None or node.ended is not None or node.supplied or node.cached:
                    extra[node.id] = _extra(node)
            if now not in _FINAL:
                index.append(i)
                open_nodes.append(node)
                statuses.append(now)
                attempts.append(tries)
        added = []
        known = self._known
        if len(self.nodes) > known:
            for i, node in enumerate(islice(self.nodes.values(), known, None), known):
                added.append(row_of(node))
                if node.status not in _FINAL:
                    index.append(i)
                    open_nodes.append(node)
                    statuses.append(node.status)
                    attempts.append(node.attempts)
            self._known = len(self.nodes)
        self._index, self._open = index, open_nodes
        self._status, self._attempts = statuses, attempts
        self._rows = len(changed) // 5 + len(added)
        events, self._events = self._events, []
        info = self.info()
        seq = self.seq + 1
        data = (
            f'{{"seq":{seq},"t0":{t0!r},"run":{dump(info)},"added":{dump(added)},'
            f'"changed":{dump(changed)},"extra":{dump(extra)},"events":[{",".join(events)}]}}'
        )
        text = f"id: {seq}\nevent: update\ndata: {data}\n\n"
        self.seq = seq
        updates = self._updates
        updates.append((seq, text))
        self._bytes += len(text)
        while len(updates) > self.keep or (self._bytes > KEEP_BYTES and len(updates) > 1):
            gone, old = updates.popleft()
            self._bytes -= len(old)
            self.base = gone
        self._changed.set()


def _extra(node: Any) -> dict[str, Any]:
    return {
        "error": node.error,
        "ended": node.ended,
        "supplied": node.supplied,
        "cached": node.cached and node.status is NodeStatus.SUCCEEDED,
    }


def row_of(node: Any) -> dict[str, Any]:
    """A node as a snapshot's row (`wire.node_row`), read from the graph's own node."""
    spec = node.spec
    return {
        "id": node.id,
        "action": spec.action,
        "branch": node.branch,
        "deps": spec.deps,
        "status": node.status,
        "attempts": node.attempts,
        "started_at": node.started_at,
        "finished_at": node.finished_at,
        "error": node.error,
        "held": node.on_hold,
        "supplied": node.supplied,
        "cached": node.cached and node.status is NodeStatus.SUCCEEDED,
        "ended": node.ended,
    }
