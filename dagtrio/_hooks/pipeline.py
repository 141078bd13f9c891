"""The event pipeline: coordinator → hook 1 → … → hook N → readers → acknowledgement.

Why it cannot deadlock: the coordinator never waits on the pipeline. It puts events
into an `Outbox` without blocking and learns that they have passed every hook and
reader from `EventsDone` messages in its own inbox, which it alone drains. Every stage
forwards downstream over a bounded channel or sends upstream to that inbox, so there is
no cycle of tasks waiting on each other. Memory stays bounded because the coordinator
starts no new node while more than ``event_capacity`` events are unacknowledged
("admit new work only while the pipeline has room").
"""

from __future__ import annotations

from collections import deque
from inspect import isawaitable
from typing import Any, Protocol

import trio

from .._model.events import ExecutionEvent, HookFailed
from .hook import EventHook, HookContext, command_list
from .messages import EventsDone, HookCommands, HookCrashed, Reply

__all__ = ["ChannelSource", "Outbox", "Reader", "Tap", "run_stage", "run_tail"]

#: how many queued events a stage takes in one go (fewer checkpoints, same order)
BATCH = 128


class _Source(Protocol):
    async def receive_batch(self) -> list[ExecutionEvent]: ...


class Outbox:
    """The coordinator's end of the pipeline: `put` never blocks.

    Its length is bounded by the coordinator's admission rule, not by the outbox
    itself, which is what lets the coordinator stay ready to receive at all times.
    """

    def __init__(self) -> None:
        self._items: deque[ExecutionEvent] = deque()
        self._wakeup: trio.Event | None = None
        self._closed = False
        #: with a journal: the seq of the last record appended, and a wait until every
        #: record up to a seq is committed. No event leaves before the records that
        #: came before it are on disk.
        self.journal: Any = None

    def put(self, event: ExecutionEvent) -> None:
        self._items.append(event)
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def close(self) -> None:
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def __len__(self) -> int:
        return len(self._items)

    async def receive_batch(self) -> list[ExecutionEvent]:
        """Up to `BATCH` events in order; `trio.EndOfChannel` once closed and empty."""
        items = self._items
        if items:
            await trio.lowlevel.checkpoint()
        while not items:
            if self._closed:
                raise trio.EndOfChannel
            self._wakeup = wakeup = trio.Event()
            await wakeup.wait()
        count = min(len(items), BATCH)
        batch = [items.popleft() for _ in range(count)]
        journal = self.journal
        if journal is not None and journal.committed < journal.seq:
            # Every record appended so far precedes every event of this batch.
            await journal.wait_committed(journal.seq)
        return batch


class ChannelSource:
    """Batched reads from a memory channel: one blocking receive, then what is queued."""

    def __init__(self, channel: trio.MemoryReceiveChannel[ExecutionEvent]) -> None:
        self.channel = channel

    async def receive_batch(self) -> list[ExecutionEvent]:
        channel = self.channel
        batch = [await channel.receive()]
        while len(batch) < BATCH:
            try:
                batch.append(channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch


async def run_stage(
    hook: EventHook,
    name: str,
    ctx: HookContext,
    source: _Source,
    sink: trio.MemorySendChannel[ExecutionEvent],
    inbox: trio.MemorySendChannel[Any],
    isolate: bool,
) -> None:
    """Feed every event to one hook, have its commands applied, then forward the event.

    An event moves on only after the commands it caused were applied, so by the time the
    coordinator hears that an event passed every hook, everything it caused is in the
    graph, and the run cannot end in between.
    """
    with sink:
        while True:
            try:
                batch = await source.receive_batch()
            except trio.EndOfChannel:
                return
            for event in batch:
                try:
                    result: Any = hook.handle(ctx, event)
                    if isawaitable(result):  # a sync handle() is accepted too
                        result = await result
                    commands = command_list(result, name)
                except Exception as exc:
                    await inbox.send(HookCrashed(name, exc, type(event) is HookFailed))
                    if not isolate:
                        # The coordinator fails the run and cancels us; see nothing more.
                        await trio.sleep_forever()
                    commands = []
                if commands:
                    # Wait until they are applied: the hook then sees its own changes in
                    # ctx.graph at its next event, and later hooks see this event only
                    # after them. The coordinator never waits on us, so this cannot
                    # close a cycle.
                    applied = Reply()
                    await inbox.send(HookCommands(name, commands, applied))
                    await applied.wait()
                try:
                    sink.send_nowait(event)
                except trio.WouldBlock:
                    await sink.send(event)


class Tap(Protocol):
    """A watcher of a run's events that never waits, for a view that must never slow it.

    Unlike a `run.events()` reader it is not part of the pipeline: the coordinator
    calls ``push`` with each event as it emits it (in the run's one order, before any
    hook has seen it) and its position among them, and ``push`` may only note it.
    ``close`` says the run's events have ended. A tap that raises is detached and
    logged; the run never fails for it.

    ``every`` says whether it needs every event. A run nobody listens to does not even
    build the events of its hot path (`NodeAdded`, `NodeStarted`, `NodeCompleted`): a
    tap that reads those changes from the graph itself (the browser page's) leaves it
    so, and is told of all the others.
    """

    every: bool

    def push(self, position: int, event: ExecutionEvent) -> None: ...

    def close(self) -> None: ...


class Reader:
    """A `run.events()` subscription: where to send, and from which event on.

    ``start`` is the pipeline position of the first event emitted after subscribing;
    events still in flight when the reader subscribed went out before it and are not
    its business, however slow the hooks ahead of the tail are.
    """

    __slots__ = ("channel", "start")

    def __init__(self, channel: trio.MemorySendChannel[ExecutionEvent], start: int) -> None:
        self.channel = channel
        self.start = start


async def run_tail(
    source: _Source,
    readers: list[Reader],
    inbox: trio.MemorySendChannel[Any],
) -> None:
    """Hand each event to every `run.events()` reader, then acknowledge it to the coordinator."""
    position = 0
    try:
        while True:
            try:
                batch = await source.receive_batch()
            except trio.EndOfChannel:
                return
            if readers:
                handed = False
                for offset, event in enumerate(batch, position):
                    for reader in tuple(readers):
                        if offset < reader.start:
                            continue
                        channel = reader.channel
                        try:
                            # A send that has room need not yield: the batch's receive
                            # was the checkpoint, and a yield per event per reader
                            # cost more than everything else a reader costs.
                            try:
                                channel.send_nowait(event)
                                handed = True
                            except trio.WouldBlock:
                                await channel.send(event)
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            # The reader went away; it must not hold the run back.
                            readers.remove(reader)
                if handed:
                    # A reader woken by these events takes its step before the
                    # coordinator hears they are through: what it submits in reply
                    # reaches the run before the run can see itself finished (as when
                    # every send yielded).
                    await trio.lowlevel.checkpoint()
            position += len(batch)
            await inbox.send(EventsDone(len(batch)))
    finally:
        for reader in readers:
            reader.channel.close()
        readers.clear()
