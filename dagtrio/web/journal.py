"""Another process's run, followed from its journal as it grows (``dagtrio serve``).

The journal's records are replayed one by one into a `RunState` of our own, exactly as
``dagtrio report`` and resume rebuild a run, and the events that replaying announces
go to the browsers like a live run's. The journal records outcomes, not starts, so a
followed run shows no node as running: a node moves from waiting to its end, with the
start and finish times its record holds.

Read-only by nature: the run belongs to its process, which holds the journal's lock.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from .._durable.records import RunInfo, StoredRun
from .._durable.replay import replay_record, state_for
from .._durable.sqlite import SqliteJournal, journal_limiter
from .._model.commands import ExecutorCommand
from .._state.view import GraphView
from .board import Board
from .feed import Feed, Rejected, snapshot_of
from .wire import node_detail

__all__ = ["JournalSource"]

_READ_ONLY = "this view follows another process's run from its journal: it is read-only"


class JournalSource:
    """A run read from a journal, polled every ``poll`` seconds until it finishes."""

    read_only = True
    kind = "journal"

    def __init__(
        self,
        journal: SqliteJournal,
        info: RunInfo,
        feed: Feed,
        poll: float,
        board: Board | None = None,
    ) -> None:
        self.journal = journal
        self.info = info
        self.feed = feed
        self.poll = poll
        self.state = state_for(info)
        self.graph = GraphView(self.state)
        feed.nodes = self.state.nodes
        self.board = board = Board() if board is None else board
        board.nodes = self.state.nodes
        board.info = lambda: self.run_info(False)
        board.activity = self.version
        board.moved = lambda: 2 * len(self.state.nodes) - self.state.unfinished
        self._seq = 0
        self._position = 0

    def run_info(self, control: bool) -> dict[str, Any]:
        info, graph = self.info, self.graph
        finished = info.status == "finished"
        return {
            "run_id": info.run_id,
            "dag_name": info.dag_name,
            "source": self.kind,
            "read_only": True,
            "control": False,
            "state": "finished" if finished else "running",
            "success": info.success if finished else None,
            "error": info.error,
            "started_at": info.started_at,
            "finished_at": info.finished_at,
            "now": time.time(),
            "paused": list(graph.paused_branches),
            "held": list(graph.held),
            "cancelled": list(graph.cancelled_branches),
        }

    def version(self) -> Any:
        return self._seq, self.info.status

    def snapshot(self, control: bool) -> dict[str, Any]:
        return snapshot_of(self.graph, self._position, self.run_info(False))

    def detail(self, node_id: str) -> dict[str, Any]:
        return node_detail(self.graph.record(node_id), self.graph.spec(node_id))

    async def submit(self, command: ExecutorCommand) -> None:
        raise Rejected(_READ_ONLY)

    async def shutdown(self, grace: float | None) -> None:
        raise Rejected(_READ_ONLY)

    def _apply(self, records: list[tuple[int, str, dict[str, Any]]]) -> None:
        stored = StoredRun(self.info, {}, (), 0, self.journal.path)
        feed = self.feed
        for seq, kind, row in records:
            events = replay_record(self.state, stored, seq, kind, row)
            self._seq = seq
            if kind == "rerun":
                # Finished nodes wait again: the board's looks follow only open ones.
                self.board.restart()
            if events:
                at = row.get("finished_at") or time.time()
                feed.extend(self._position, events, at, row.get("started_at"))
                self.board.extend(events, at, row.get("started_at"))
                self._position += len(events)

    async def follow(self, *, task_status: trio.TaskStatus[None]) -> None:
        journal = self.journal
        limiter = journal_limiter()
        started = False
        while True:
            info, records = await trio.to_thread.run_sync(
                journal._follow, self.info.run_id, self._seq, limiter=limiter
            )
            self._apply(records)
            self.info = info
            if not started:
                started = True
                task_status.started()
            if info.status == "finished":
                self.state.drop_holds()
                self.state.restore_times(info.started_at, info.finished_at)
                self.board.close()
                self.feed.close()
                return
            await trio.sleep(self.poll)
