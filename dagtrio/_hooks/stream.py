"""What ``run.events()`` returns: a bounded stream of the run's events."""

from __future__ import annotations

from types import TracebackType

import trio

from .._model.events import ExecutionEvent

__all__ = ["EventStream"]

#: events a stream hands out without yielding to Trio, at most, while it has them
RUN = 64


class EventStream:
    """Every event of a run from the moment it was opened, in the run's one order.

    Returned by `Run.events`. Iterate it with ``async for``; it ends when the run ends.
    The stream is bounded: a reader that falls behind slows the run down rather than
    letting events pile up. An event that is already waiting is handed out without a
    trip through Trio's scheduler (a yield at most every 64 events, and whenever the
    stream must wait), so reading costs little more than the loop's own body;
    cancellation is seen at those yields. Use it as ``async with run.events() as events:`` (or call
    `aclose`) to stop reading early; a stream that is dropped is closed too, so an
    abandoned reader never stalls the run.
    """

    def __init__(
        self,
        channel: trio.MemoryReceiveChannel[ExecutionEvent],
        feed: trio.MemorySendChannel[ExecutionEvent] | None = None,
    ) -> None:
        self._channel = channel
        self._feed = feed
        self._run = 0

    def detach(self) -> None:
        """Stop feeding this stream: what it holds can still be read, then it ends."""
        if self._feed is not None:
            self._feed.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ExecutionEvent:
        try:
            return await self.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def receive(self) -> ExecutionEvent:
        """The next event; `trio.EndOfChannel` once the run has ended."""
        run = self._run
        if run < RUN:
            try:
                event = self._channel.receive_nowait()
            except trio.WouldBlock:
                pass
            else:
                self._run = run + 1
                return event
        self._run = 0
        return await self._channel.receive()

    def close(self) -> None:
        """Stop receiving; the run no longer waits for this reader."""
        self._channel.close()

    async def aclose(self) -> None:
        """Async form of `close`, for ``contextlib.aclosing`` and friends."""
        self.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.close()
