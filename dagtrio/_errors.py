"""Every exception dagtrio raises, in one place (the httpcore habit)."""

from __future__ import annotations

__all__ = [
    "CommandRejectedError",
    "describe",
    "DagtrioError",
    "InvalidGraphError",
    "InvalidSpecError",
    "JournalError",
    "PermanentError",
    "RunFinishedError",
    "UnknownActionError",
]


class DagtrioError(Exception):
    """Base class of every error dagtrio raises on purpose.

    Catch it to tell dagtrio's own complaints apart from exceptions raised by your
    actions or hooks, which dagtrio passes through unchanged.
    """


class _NodeProblem(DagtrioError, ValueError):
    """An error about one node (or none in particular), saying what is wrong with it."""

    _subject = "graph"

    def __init__(self, node: str | None, reason: str) -> None:
        self.node = node
        self.reason = reason
        where = f"node {node!r}" if node is not None else self._subject
        super().__init__(f"{where}: {reason}")


class InvalidSpecError(_NodeProblem):
    """A `NodeSpec` field has a bad value (``try_count=0``, inputs that are not a mapping…).

    Raised while the spec is built, so a bad spec never reaches a coordinator.
    ``node`` is the spec's id (``None`` when it has none yet) and ``reason`` says what
    is wrong.
    """

    _subject = "node spec"


class InvalidGraphError(_NodeProblem):
    """The specs do not form a valid graph: unknown action or dep, duplicate id, a cycle.

    Raised before a run starts for the initial specs. During a run the same checks
    reject a command with a `CommandRejected` event instead, and the run goes on.
    ``node`` names the offending node and ``reason`` says what is wrong with it.
    """


class UnknownActionError(DagtrioError, KeyError):
    """`ActionRegistry.get` was asked for a name nobody registered."""

    def __init__(self, name: str, known: tuple[str, ...] = ()) -> None:
        self.name = name
        hint = f"; registered: {', '.join(sorted(known))}" if known else "; none registered"
        self.message = f"no action named {name!r}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return self.message


class CommandRejectedError(DagtrioError):
    """`Run.submit` was given a command the coordinator rejected.

    The run also emitted a `CommandRejected` event with the same reason and went on,
    unchanged. ``command`` is the rejected command.
    """

    def __init__(self, command: object, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{type(command).__name__} rejected: {reason}")


class JournalError(DagtrioError):
    """The journal cannot be opened, read or written: the message says which file and why.

    A run whose journal fails is stopped (it can no longer promise durability) and
    raises this from `Coordinator.run` / leaving `Coordinator.open_run`.
    """


class PermanentError(Exception):
    """Raise it from an action to say the failure is not worth retrying.

    The node fails at once, whatever attempts its ``try_count`` has left (a 404, a
    refused payment, bad input: trying again gives the same answer). Its message is
    the node's error; chain the cause (``raise PermanentError("no such page") from
    exc``) to keep the traceback of what went wrong. Not a `DagtrioError`: it is
    yours to raise, and dagtrio never raises it.
    """


class RunFinishedError(DagtrioError):
    """A command was submitted to a run that has already ended."""


def describe(exc: BaseException) -> str:
    """``"KeyError: 'missing'"``: an exception as one line, the way errors are reported."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
