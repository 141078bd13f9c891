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

import sys
from collections import deque
from inspect import isawaitable
from types import CoroutineType
from typing import Any, Protocol

import trio

from .._model.events import ExecutionEvent, HookFailed
from .hook import EventHook, HookContext, command_list
from .messages import EventsDone, HookCommands, HookCrashed, Reply

__all__ = ["Outbox", "Pipe", "Reader", "Tap", "Through", "run_stage", "run_tail"]

#: how many queued events a stage takes in one go (fewer checkpoints, same order)
BATCH = 128


class _Source(Protocol):
    async def receive_batch(self) -> list[ExecutionEvent]: ...


class Pipe:
    """A bounded queue of events from one stage of the pipeline to the next.

    Between two of the pipeline's own tasks a Trio memory channel cost a
    ``send_nowait`` and a ``receive_nowait`` per event and stage: the better part of
    what a pass-through hook cost the run. A pipe is the same bounded FIFO without
    what its two ends do not need (statistics, cloning, KI protection): `put_nowait`
    is an append, and the next stage takes what is queued in one `receive_batch`.

    It holds at most ``capacity`` events. With capacity 0 an event goes in only while
    the next stage waits for one (a rendezvous, as a channel of capacity 0), so every
    capacity bounds the pipeline exactly as channels did. One task puts, one task
    takes; `close` (the putting stage ended) lets the taker drain it, then ends it.
    A `run.events()` stream reads one too, one event at a time (`receive`), and may
    stop early (`close_receiver`): a put then raises `trio.BrokenResourceError`.
    """

    __slots__ = ("_capacity", "_closed", "_getter", "_gone", "_items", "_putter")

    def __init__(self, capacity: int) -> None:
        self._items: deque[ExecutionEvent] = deque()
        self._capacity = capacity
        self._getter: trio.lowlevel.Task | None = None
        self._putter: trio.lowlevel.Task | None = None
        self._closed = False
        self._gone = False

    def put_nowait(self, event: ExecutionEvent) -> bool:
        """Queue ``event`` if there is room; whether it went in."""
        if self._gone or self._closed:
            if self._gone:
                raise trio.BrokenResourceError("the stream was closed by its reader")
            raise trio.ClosedResourceError("the stream no longer takes events")
        items = self._items
        getter = self._getter
        if len(items) < self._capacity or (getter is not None and not items):
            items.append(event)
            if getter is not None:
                self._getter = None
                trio.lowlevel.reschedule(getter)
            return True
        return False

    def extend_nowait(self, events: list[ExecutionEvent], start: int) -> int:
        """Queue ``events[start:]``, as many as there is room for; where it stopped."""
        if self._gone or self._closed:
            self.put_nowait(events[start])  # raises what a put would
        items = self._items
        getter = self._getter
        room = self._capacity - len(items)
        if room <= 0:
            if getter is None or items:
                return start
            room = 1
        end = min(len(events), start + room)
        items.extend(events[start:end] if start or end < len(events) else events)
        if getter is not None:
            self._getter = None
            trio.lowlevel.reschedule(getter)
        return end

    async def put(self, event: ExecutionEvent) -> None:
        """Queue ``event``, waiting for room if there is none."""
        while not self.put_nowait(event):
            self._putter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_put)

    def _abort_put(self, _: Any) -> trio.lowlevel.Abort:
        self._putter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _abort_get(self, _: Any) -> trio.lowlevel.Abort:
        self._getter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _room(self) -> None:
        putter = self._putter
        if putter is not None:
            self._putter = None
            trio.lowlevel.reschedule(putter)

    def close(self) -> None:
        """No more events: the taker gets what is queued, then `trio.EndOfChannel`.

        A put waiting for room (a stream detached while the tail waits on it) raises
        `trio.ClosedResourceError`.
        """
        self._closed = True
        self._room()
        getter = self._getter
        if getter is not None:
            self._getter = None
            trio.lowlevel.reschedule(getter)

    def close_receiver(self) -> None:
        """The taker stops: what is queued is dropped, and a put raises from now on."""
        self._gone = True
        self._items.clear()
        self._room()

    async def receive(self) -> ExecutionEvent:
        """The next event; `trio.EndOfChannel` once closed and empty.

        Always a checkpoint, as a channel's; `trio.ClosedResourceError` after
        `close_receiver`.
        """
        await self._ready()
        if self._gone:
            raise trio.ClosedResourceError("this stream was closed")
        event = self._items.popleft()
        self._room()
        return event

    async def _ready(self) -> None:
        """Wait until an event is queued; a checkpoint even if one is."""
        items = self._items
        if items:
            await trio.lowlevel.checkpoint()
        while not items:
            if self._gone:
                raise trio.ClosedResourceError("this stream was closed")
            if self._closed:
                raise trio.EndOfChannel
            self._getter = trio.lowlevel.current_task()
            self._room()  # with capacity 0, a waiting taker is the room
            await trio.lowlevel.wait_task_rescheduled(self._abort_get)

    async def receive_batch(self) -> list[ExecutionEvent]:
        """Up to `BATCH` events in order; `trio.EndOfChannel` once closed and empty."""
        await self._ready()
        items = self._items
        count = len(items)
        if count <= BATCH:
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft() for _ in range(BATCH)]
        self._room()
        return batch


class Outbox(Pipe):
    """The coordinator's end of the pipeline: `put` never blocks.

    Its length is bounded by the coordinator's admission rule, not by the outbox
    itself, which is what lets the coordinator stay ready to receive at all times.
    """

    __slots__ = ("journal",)

    def __init__(self) -> None:
        super().__init__(sys.maxsize)
        #: with a journal: the seq of the last record appended, and a wait until every
        #: record up to a seq is committed. No event leaves before the records that
        #: came before it are on disk.
        self.journal: Any = None

    def put(self, event: ExecutionEvent) -> None:  # type: ignore[override]
        """Queue ``event`` (the run's own last events may follow `close`)."""
        self._items.append(event)
        getter = self._getter
        if getter is not None:
            self._getter = None
            trio.lowlevel.reschedule(getter)

    def __len__(self) -> int:
        return len(self._items)

    async def receive_batch(self) -> list[ExecutionEvent]:
        """Up to `BATCH` events, once every record appended before them is committed."""
        batch = await super().receive_batch()
        journal = self.journal
        if journal is not None and journal.committed < journal.seq:
            # Every record appended so far precedes every event of this batch.
            await journal.wait_committed(journal.seq)
        return batch


async def run_stage(
    hook: EventHook,
    name: str,
    ctx: HookContext,
    source: _Source,
    sink: Pipe,
    inbox: trio.MemorySendChannel[Any],
    isolate: bool,
    readers: list[Reader] | None = None,
    through: Through | None = None,
) -> None:
    """Feed every event to one hook, have its commands applied, then forward the event.

    An event moves on only after the commands it caused were applied, so by the time the
    coordinator hears that an event passed every hook, everything it caused is in the
    graph, and the run cannot end in between.

    The last stage is given the run's ``readers`` (``sink`` is then the tail's pipe).
    While there are none and the tail has acknowledged everything it was given, the
    stage acknowledges its batches itself instead of forwarding them (and counts them
    in ``through``, the tail's position, so that a reader subscribing later starts
    where it should): the tail would only count them, and the trip through it (a put
    per event, a task switch per batch) was a fifth of what a pass-through hook cost.
    Acknowledgements stay in pipeline order, as the journal's handled mark needs: the
    tail is idle and empty when the stage starts to acknowledge, and stays so until it
    forwards again.
    """
    handle = hook.handle
    put_nowait = sink.put_nowait
    try:
        while True:
            try:
                batch = await source.receive_batch()
            except trio.EndOfChannel:
                return
            # A reader that subscribes meanwhile starts after every event of this
            # batch (they were emitted before it), so the choice holds for the batch.
            direct = (
                readers is not None
                and not readers
                and sink._getter is not None  # the tail waits: it has sent every ack
                and not sink._items
            )
            for event in batch:
                try:
                    result: Any = handle(ctx, event)
                    if result is not None:
                        # A sync handle() is accepted too.
                        if type(result) is CoroutineType or isawaitable(result):
                            result = await result
                        commands = command_list(result, name) if result is not None else ()
                    else:
                        commands = ()
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
                if direct:
                    continue
                if not put_nowait(event):
                    await sink.put(event)
            if direct:
                assert through is not None
                through.count += len(batch)
                await inbox.send(EventsDone(len(batch)))
    finally:
        sink.close()


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


class Through:
    """How many events have passed the last hook stage: forwarded to the tail and
    handed on by it, or acknowledged by the stage itself. The tail's position, shared
    by the two, against which a reader's ``start`` is measured."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class Reader:
    """A `run.events()` subscription: where to send, and from which event on.

    ``start`` is the pipeline position of the first event emitted after subscribing;
    events still in flight when the reader subscribed went out before it and are not
    its business, however slow the hooks ahead of the tail are.
    """

    __slots__ = ("channel", "start")

    def __init__(self, channel: Pipe, start: int) -> None:
        self.channel = channel
        self.start = start


async def run_tail(
    source: _Source,
    readers: list[Reader],
    inbox: trio.MemorySendChannel[Any],
    through: Through,
) -> None:
    """Hand each event to every `run.events()` reader, then acknowledge it to the coordinator."""
    try:
        while True:
            try:
                batch = await source.receive_batch()
            except trio.EndOfChannel:
                return
            if readers:
                handed = False
                count = len(batch)
                for reader in tuple(readers):
                    # Events in flight when it subscribed went out before it.
                    i = max(0, reader.start - through.count)
                    channel = reader.channel
                    try:
                        # What has room goes in at once, without a yield: the batch's
                        # receive was the checkpoint, and a yield (or a call) per event
                        # and reader cost more than everything else a reader costs.
                        while i < count:
                            reached = channel.extend_nowait(batch, i)
                            if reached > i:
                                handed = True
                                i = reached
                            else:
                                await channel.put(batch[i])
                                i += 1
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        # The reader went away; it must not hold the run back.
                        readers.remove(reader)
                if handed:
                    # A reader woken by these events takes its step before the
                    # coordinator hears they are through: what it submits in reply
                    # reaches the run before the run can see itself finished (as when
                    # every send yielded).
                    await trio.lowlevel.checkpoint()
            through.count += len(batch)
            await inbox.send(EventsDone(len(batch)))
    finally:
        for reader in readers:
            reader.channel.close()
        readers.clear()
