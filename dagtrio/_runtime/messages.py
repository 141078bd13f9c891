"""Messages into the coordinator's inbox (internal).

The coordinator task is the only receiver of one bounded inbox. Workers, hook stages,
timers and `Run` methods send these; the coordinator never sends to any of them while
they might be waiting on it, which is what keeps the message flow free of cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._hooks.messages import Reply
from .._model.commands import ExecutorCommand

if TYPE_CHECKING:
    from .._state.node import Node


class RetryDue:
    """A retry delay has passed."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node


class Progress:
    """``await ctx.emit(payload)``: an action's progress, for `NodeProgress`; ``reply``
    is set once the event is in the pipeline (or dropped: nobody listens, or the
    attempt is over)."""

    __slots__ = ("attempt", "node_id", "payload", "reply")

    def __init__(self, node_id: str, attempt: int, payload: object, reply: Reply) -> None:
        self.node_id = node_id
        self.attempt = attempt
        self.payload = payload
        self.reply = reply


class HooksStarted:
    """Every hook's ``on_start`` has run and its commands are ahead in the inbox."""

    __slots__ = ()


class Submitted:
    """A command from outside the run; ``reply`` is set once it was applied or rejected
    (``reason`` says why), or the run ended before it got to it (``unapplied``)."""

    __slots__ = ("command", "reason", "reply", "unapplied")

    def __init__(self, command: ExecutorCommand, reply: Reply) -> None:
        self.command = command
        self.reply = reply
        self.reason: str | None = None
        self.unapplied = False


class Shutdown:
    """Stop starting nodes; cancel running ones after ``grace`` seconds; ``reply`` once in force."""

    __slots__ = ("grace", "reason", "reply")

    def __init__(self, grace: float, reason: str, reply: Reply) -> None:
        self.grace = grace
        self.reason = reason
        self.reply = reply


class GraceOver:
    """The shutdown grace period ended: cancel what still runs."""

    __slots__ = ()


class JournalProgress:
    """The journal wrote a batch while the run waited for its backlog to shrink."""

    __slots__ = ()


class JournalFailed:
    """The journal could not be written: the run stops with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error
