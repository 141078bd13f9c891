"""What ``run.events()`` returns: a bounded stream of the run's events."""

from __future__ import annotations

from types import TracebackType

import trio

from .._model.events import ExecutionEvent
from .pipeline import Pipe

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
    cancellation is seen at those yields. Use it as ``async with run.events() as
    events:`` (or call `aclose`) to stop reading early; a stream that is dropped is
    closed too, so an abandoned reader never stalls the run.
    """

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._run = 0

    def detach(self) -> None:
        """Stop feeding this stream: what it holds can still be read, then it ends."""
        self._pipe.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ExecutionEvent:
        # The quick path here, not in `receive`: a second coroutine per event was a
        # fifth of what reading cost, and ``async for`` is how streams are read.
        pipe = self._pipe
        items = pipe._items
        run = self._run
        if items and run < RUN and not pipe._gone:
            self._run = run + 1
            event = items.popleft()
            if pipe._putter is not None:
                pipe._room()
            return event
        self._run = 0
        try:
            return await pipe.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def receive(self) -> ExecutionEvent:
        """The next event; `trio.EndOfChannel` once the run has ended,
        `trio.ClosedResourceError` once the stream was closed."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            if self._pipe._gone:
                raise trio.ClosedResourceError("this stream was closed") from None
            raise trio.EndOfChannel from None

    def close(self) -> None:
        """Stop receiving; the run no longer waits for this reader."""
        self._pipe.close_receiver()

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
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            pipe.close_receiver()
