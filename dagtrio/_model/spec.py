"""The data a node is made of: its spec, its identity, its outcome and its status."""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

import attrs
import trio

from .._errors import InvalidSpecError
from .frozen import EMPTY, FrozenDict, freeze

__all__ = [
    "ENDINGS",
    "MAIN_BRANCH",
    "Ending",
    "NodeCtx",
    "NodeOutput",
    "NodeRef",
    "NodeSpec",
    "NodeStatus",
    "validate_branch",
]

#: The branch of a node that names none and has no deps.
MAIN_BRANCH = "main"

#: What became of the work of an attempt that was cancelled or timed out, as its
#: events and record say: ``"killed"`` (its worker process was killed: the work really
#: stopped), ``"abandoned"`` (the node ended at once but the work may run on: a thread,
#: a Dask task; it keeps its executor's slot until it really ends) or ``"finished"``
#: (it stopped where it ran: Trio cancelled it in its own task, which cannot outlive the
#: run).
Ending = Literal["killed", "abandoned", "finished"]
ENDINGS: tuple[Ending, ...] = ("killed", "abandoned", "finished")


def validate_branch(branch: object, *, node: str | None = None) -> str:
    """Return ``branch`` if it is a valid branch path, else raise `InvalidSpecError`.

    Branch names are ``/``-separated paths (``"main/tool-3"``); a command on a branch
    covers every branch below it, so empty segments would make "below" ambiguous.
    """
    if not isinstance(branch, str):
        raise InvalidSpecError(node, f"branch must be a string, got {type(branch).__name__}")
    if not branch or branch[0] == "/" or branch[-1] == "/" or "//" in branch:
        raise InvalidSpecError(
            node, f"branch {branch!r} is not a path of non-empty names joined by '/'"
        )
    return branch


def _check_number(node: str | None, name: str, value: object, *, allow_zero: bool) -> float:
    # bool is an int subclass; `timeout=True` is a bug, not one second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpecError(node, f"{name} must be a number, got {type(value).__name__}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidSpecError(node, f"{name} must be {bound}, got {value!r}")
    return float(value)


def _deps_tuple(deps: Iterable[str]) -> tuple[str, ...]:
    # What is not a good iterable of ids stays as it is, for __attrs_post_init__ to
    # refuse naming the node (a converter cannot know which node it converts for).
    kind = type(deps)
    if kind is tuple:  # the common cases first: a spec is built per node
        return deps  # type: ignore[return-value]
    if kind is list:
        return tuple(deps)
    if isinstance(deps, str | bytes) or not isinstance(deps, Iterable):
        return deps  # type: ignore[return-value]
    return tuple(deps)


def _not_deps(deps: object) -> str:
    if isinstance(deps, str | bytes):
        return (
            f"deps must be a list of node ids, got the string {deps!r} "
            f"(for one dep, write deps=[{deps!r}])"
        )
    return f"deps must be a list of node ids, got {type(deps).__name__} {deps!r}"


@attrs.frozen(slots=True)
class NodeSpec:
    """What a node is: the action to run, its deps, inputs and execution policy.

    Build specs and hand them to a `Coordinator` (the initial graph) or to `AddNode` /
    `AddNodes` (growth during a run). Every field is checked here, so a bad spec fails
    where it is written, naming the node and the problem.

    - ``action``: name of an action in the `ActionRegistry`.
    - ``id``: unique node id; ``None`` lets the coordinator assign one.
    - ``deps``: ids of nodes that must *succeed* before this one starts (any iterable
      of ids but a string, which would be a list of one-letter ids; repeated ids are
      kept once).
    - ``inputs``: a mapping with string keys handed to the action as ``ctx.inputs``.
      Copied into read-only containers, deep (see `dagtrio._model.frozen`): later changes
      to your dict do not reach the run, and neither the action nor any hook can
      change what a node receives except by the `SetNodeInputs` command.
    - ``timeout``: seconds per attempt, ``None`` for no limit.
    - ``try_count``: total attempts, at least 1.
    - ``retry_delay``: seconds before the 2nd attempt; doubles for each later one.
    - ``max_retry_delay``: the longest a retry waits, however often the delay doubled;
      ``None`` for no cap.
    - ``retry_jitter``: a fraction from 0 to 1 that spreads each delay (capped first)
      down to ``(1 - retry_jitter)`` of it, so that many nodes failing together (a
      rate limit, a service restarting) do not all come back at the same instant.
      The spread is drawn from the run id, the node id and the attempt, so a run
      (and its resume) waits the same delays each time it is given the same run id.
    - ``defer``: fan in after growth of unknown size. The node starts once its deps
      succeeded **and** its branch (with the branches below it) is quiet: nothing else
      there is waiting, running, waiting to retry, paused or held, and every event
      about its nodes has passed every hook, so no planner can still add to it.
      Deferred nodes do not wait for each other, nor for nodes that wait on one.
    - ``branch``: branch path; ``None`` means the first dep's branch, else ``"main"``.
    - ``cache``: whether a coordinator with a cache (``Coordinator(cache=...)``) may
      reuse an earlier success of this node's cache key instead of running it. ``None``
      follows the action's registration (``@registry.action(cache=True)``); ``True``
      or ``False`` decide for this node alone.
    - ``estimate``: how long one attempt is expected to take, in seconds; ``None`` if
      unknown. Nothing waits on it: ``dagtrio graph --critical-path`` uses it for a
      graph that has not run yet (a journaled run's real durations win).
    - ``executor``: where the node's attempts run, by the name the `Coordinator`'s
      ``executors`` give it (``"inline"``, ``"thread"``, ``"process"``…); ``None``
      follows the action's registration (``@registry.action(executor=...)``).
    - ``priority``: among nodes ready at the same time, higher starts first (then, with
      ``Coordinator(order="critical_path")``, the longer remaining path; then the one
      ready first). Any integer; 0 by default.
    - ``uses``: the resources one attempt holds while it runs, by name and amount
      (``{"llm": 1}``), out of the `Coordinator`'s ``limits``: the node starts only
      once they are free. ``None`` follows the action's registration
      (``@registry.action(uses=...)``); ``{}`` uses none.
    """

    action: str
    id: str | None = None
    deps: tuple[str, ...] = attrs.field(default=(), converter=_deps_tuple)
    inputs: Mapping[str, Any] = attrs.field(default=EMPTY, hash=False)
    timeout: float | None = None
    try_count: int = 1
    retry_delay: float = 0.0
    branch: str | None = None
    cache: bool | None = None
    executor: str | None = None
    max_retry_delay: float | None = None
    retry_jitter: float = 0.0
    defer: bool = False
    estimate: float | None = None
    priority: int = 0
    uses: Mapping[str, int] | None = attrs.field(default=None, hash=False)

    def __attrs_post_init__(self) -> None:
        # Validation lives here rather than in per-field validators so every message can
        # name the node, whatever field is wrong.
        # Each check tests the common case first (an exact type), and asks the slower
        # question only when that fails: a spec is built per node, 100 000 for a file.
        node = self.id
        if node is not None and (
            (node.__class__ is not str and not isinstance(node, str)) or not node
        ):
            raise InvalidSpecError(None, f"id must be a non-empty string or None, got {node!r}")
        action = self.action
        if (action.__class__ is not str and not isinstance(action, str)) or not action:
            raise InvalidSpecError(node, f"action must be a non-empty string, got {action!r}")
        deps = self.deps
        if deps.__class__ is not tuple:
            raise InvalidSpecError(node, _not_deps(deps))
        if deps:
            for dep in deps:
                if (dep.__class__ is not str and not isinstance(dep, str)) or not dep:
                    raise InvalidSpecError(node, f"deps must be non-empty strings, got {dep!r}")
            if len(deps) > 1 and len(set(deps)) != len(deps):
                object.__setattr__(self, "deps", tuple(dict.fromkeys(deps)))  # first of each
        inputs = self.inputs
        if inputs is not EMPTY:  # the default, frozen and empty already
            if inputs.__class__ is not dict and not isinstance(inputs, Mapping):
                raise InvalidSpecError(
                    node, f"inputs must be a mapping, got {type(inputs).__name__}"
                )
            for key in inputs:
                if key.__class__ is not str and not isinstance(key, str):
                    raise InvalidSpecError(node, f"input names must be strings, got {key!r}")
            if inputs.__class__ is dict:  # the common case: freeze() would ask again
                frozen: Mapping[str, Any] = FrozenDict(inputs) if inputs else EMPTY
            else:
                frozen = freeze(inputs)
            object.__setattr__(self, "inputs", frozen)
        timeout = self.timeout
        if timeout is not None and not (timeout.__class__ is float and timeout > 0):
            object.__setattr__(
                self, "timeout", _check_number(node, "timeout", timeout, allow_zero=False)
            )
        tries = self.try_count
        if tries.__class__ is not int and (isinstance(tries, bool) or not isinstance(tries, int)):
            raise InvalidSpecError(node, f"try_count must be an int, got {type(tries).__name__}")
        if tries < 1:
            raise InvalidSpecError(
                node, f"try_count must be >= 1 (it counts attempts), got {self.try_count}"
            )
        # The defaults (a float 0.0) need no check: a spec is built per node, and most
        # nodes retry without delay or jitter.
        delay = self.retry_delay
        if delay.__class__ is not float or delay != 0.0:
            delay = _check_number(node, "retry_delay", delay, allow_zero=True)
            if math.isinf(delay):
                raise InvalidSpecError(node, "retry_delay must be finite")
            object.__setattr__(self, "retry_delay", delay)
        if self.max_retry_delay is not None:
            cap = _check_number(node, "max_retry_delay", self.max_retry_delay, allow_zero=True)
            object.__setattr__(self, "max_retry_delay", cap)
        jitter = self.retry_jitter
        if jitter.__class__ is not float or jitter != 0.0:
            jitter = _check_number(node, "retry_jitter", jitter, allow_zero=True)
            if jitter > 1:
                raise InvalidSpecError(
                    node, f"retry_jitter must be a fraction from 0 to 1, got {self.retry_jitter!r}"
                )
            object.__setattr__(self, "retry_jitter", jitter)
        if self.branch is not None:
            validate_branch(self.branch, node=node)
        if self.cache is not None and not isinstance(self.cache, bool):
            raise InvalidSpecError(
                node, f"cache must be True, False or None, got {type(self.cache).__name__}"
            )
        if self.defer is not False and self.defer is not True:
            raise InvalidSpecError(
                node, f"defer must be True or False, got {type(self.defer).__name__}"
            )
        estimate = self.estimate
        if estimate is not None and not (
            estimate.__class__ is float and 0.0 <= estimate < math.inf
        ):
            estimate = _check_number(node, "estimate", estimate, allow_zero=True)
            if math.isinf(estimate):
                raise InvalidSpecError(node, "estimate must be finite (seconds)")
            object.__setattr__(self, "estimate", estimate)
        if self.executor is not None and (not isinstance(self.executor, str) or not self.executor):
            raise InvalidSpecError(
                node, f"executor must be a non-empty string or None, got {self.executor!r}"
            )
        priority = self.priority
        if priority.__class__ is not int and (
            isinstance(priority, bool) or not isinstance(priority, int)
        ):
            raise InvalidSpecError(node, f"priority must be an int, got {type(priority).__name__}")
        if self.uses is not None:
            object.__setattr__(self, "uses", check_uses(self.uses, node=node))


def check_uses(uses: object, *, node: str | None = None, what: str = "uses") -> Mapping[str, int]:
    """``uses`` as a read-only mapping of resource names to amounts (ints >= 1), or
    `InvalidSpecError` naming ``node`` and what is wrong."""
    if not isinstance(uses, Mapping):
        raise InvalidSpecError(
            node,
            f"{what} must be a mapping of resource names to amounts, got {type(uses).__name__}",
        )
    for name, amount in uses.items():
        if not isinstance(name, str) or not name:
            raise InvalidSpecError(
                node, f"{what}: resource names must be non-empty strings, got {name!r}"
            )
        if amount.__class__ is not int or amount < 1:
            raise InvalidSpecError(node, f"{what}[{name!r}] must be an int >= 1, got {amount!r}")
    return FrozenDict(uses) if uses else EMPTY


@attrs.frozen(slots=True)
class NodeRef:
    """Names one node of one run's DAG; events carry it so a listener knows where."""

    dag: str
    node: str

    def __str__(self) -> str:
        return f"{self.dag}:{self.node}"


@attrs.frozen(slots=True)
class NodeOutput:
    """What one attempt of an action produced.

    ``success=False`` makes the attempt a failure (retried while attempts remain).
    Return `NodeOutput.ok` / `NodeOutput.failed` from actions that want to attach
    ``metadata``; a plain return value ``v`` is taken as ``NodeOutput.ok(v)``.
    """

    outputs: Any = None
    success: bool = True
    metadata: Mapping[str, Any] | None = attrs.field(default=None, hash=False)

    @classmethod
    def ok(cls, outputs: Any = None, **metadata: Any) -> NodeOutput:
        """A successful outcome carrying ``outputs`` (what dependents see upstream)."""
        return cls(outputs, True, metadata or None)

    @classmethod
    def failed(cls, error: str, *, retry: bool = True, **metadata: Any) -> NodeOutput:
        """A failed attempt that says why, without raising an exception.

        ``retry=False`` ends the node at once, whatever attempts remain (the failure
        is not worth retrying: see `dagtrio.PermanentError` for the raising form).
        """
        if not retry:
            metadata["retry"] = False
        return cls(None, False, {"error": str(error), **metadata})

    @property
    def retry(self) -> bool:
        """Whether a failed outcome may be retried (false after ``failed(retry=False)``)."""
        return not self.metadata or self.metadata.get("retry") is not False

    @property
    def error(self) -> str | None:
        """The error message of a failed outcome, else ``None``."""
        if self.success:
            return None
        message = (self.metadata or {}).get("error")
        return str(message) if message is not None else "action reported failure"


class NodeStatus(enum.StrEnum):
    """Where a node stands. ``SUCCEEDED``, ``FAILED``, ``CANCELLED`` and ``SKIPPED`` are final.

    ``PENDING``: waiting for deps (or for a retry's delay to pass); ``READY``: may start
    as soon as a slot is free; ``RUNNING``: an attempt is in progress.
    """

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        """True once the node can never change again."""
        return self in _FINAL


_FINAL = frozenset(
    {NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.CANCELLED, NodeStatus.SKIPPED}
)


@attrs.frozen(slots=True)
class NodeCtx:
    """Everything an action may read about the attempt it runs. Read-only.

    ``upstream`` maps each dep's id to that dep's ``outputs``; ``cache`` maps every
    node of the run that has succeeded so far to its outputs; ``attempt`` counts from 1;
    ``app_data`` is whatever the application passed to the `Coordinator`.

    ``await ctx.emit(payload)`` streams progress to hooks and readers (`NodeProgress`).

    ``inputs`` and ``cache`` are read-only views, not copies (copying every output for
    every node would cost O(nodes) per start). ``cache`` is live: a sync action running
    in a worker thread should look up the keys it needs rather than iterate it, since
    the run may add entries meanwhile.
    """

    dag_name: str
    node_id: str
    run_id: str
    inputs: Mapping[str, Any]
    upstream: Mapping[str, Any]
    attempt: int
    cache: Mapping[str, Any]
    app_data: Any = None
    branch: str = MAIN_BRANCH
    #: where `emit` sends: the run's (None in a context made by hand, as in unit tests)
    progress: Callable[[str, int, Any], Awaitable[None]] | None = attrs.field(
        default=None, repr=False, eq=False
    )

    @property
    def ref(self) -> NodeRef:
        """This node as a `NodeRef`."""
        return NodeRef(self.dag_name, self.node_id)

    async def emit(self, payload: Any = None) -> None:
        """Tell the run how this attempt is getting on: hooks and ``run.events()`` get
        a `NodeProgress` with ``payload``, in order with every other event.

        Waits while the event pipeline is full, so a slow hook or reader slows the
        emitting action, never the run. Without listeners (no hooks, no reader) the
        event is dropped at once. In a context made by hand it only checkpoints. A sync
        action (in a worker thread) calls `emit_from_thread` instead.
        """
        if self.progress is None:
            await trio.lowlevel.checkpoint()
            return
        await self.progress(self.node_id, self.attempt, payload)

    def emit_from_thread(self, payload: Any = None) -> None:
        """`emit`, for a sync action running in a worker thread: blocks the thread
        (not the run) while the event pipeline is full. On a remote executor the
        portable context's version drops the payload, so one action works on both."""
        if self.progress is None:
            return
        trio.from_thread.run(self.emit, payload)


def iter_specs(specs: Iterable[NodeSpec], *, what: str = "specs") -> list[NodeSpec]:
    """Materialise ``specs``, refusing anything that is not a `NodeSpec`."""
    if isinstance(specs, NodeSpec):
        return [specs]
    if isinstance(specs, str | bytes | Mapping) or not isinstance(specs, Iterable):
        raise TypeError(f"{what} must be an iterable of NodeSpec, got {type(specs).__name__}")
    out = list(specs)
    for spec in out:
        if not isinstance(spec, NodeSpec):
            raise TypeError(f"{what} must contain NodeSpec objects, got {spec!r}")
    return out
