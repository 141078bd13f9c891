"""What one benchmark runs: the graph's shape and size, the action, the run's limits.

A `Workload` is plain data that goes to each runner's subprocess as JSON, so every
runner rebuilds exactly the same graph from the same seed. `ActionKind` is what each
node does: ``noop`` (yield to Trio once), ``sleep:SECONDS`` or ``cpu:MICROSECONDS``
(busy work that holds the event loop, like real CPU-bound code in an async action).

The CPU work is a fixed number of interpreter loop iterations, calibrated once per
invocation to last the given time on this machine, not a spin until a deadline: a
deadline would let threads overlap their waiting and look parallel under the GIL.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from .._validate import check_int
from .generators import SHAPES, Graph, make_graph

__all__ = ["EXECUTORS", "ActionKind", "Workload", "burn", "calibrate"]


def burn(iterations: int) -> None:
    """A fixed amount of CPU work: ``iterations`` turns of an interpreter loop."""
    for _ in range(iterations):
        pass


def calibrate() -> float:
    """Loop iterations of `burn` per microsecond on this machine (the best of five)."""
    probe = 200_000
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        burn(probe)
        best = min(best, time.perf_counter() - start)
    return probe / (best * 1e6)


@attrs.frozen
class ActionKind:
    """What every node of a benchmark does: ``noop``, ``sleep`` or ``cpu``, and how much.

    ``amount`` is seconds for ``sleep`` and microseconds for ``cpu`` (0 for ``noop``).
    Every async form ends by yielding to Trio once, so a node always costs one task
    switch at least, in every runner alike.
    """

    kind: str
    amount: float = 0.0
    #: `burn` iterations per microsecond, for ``cpu`` (see `calibrate`)
    rate: float = attrs.field(default=0.0, eq=False)

    @classmethod
    def parse(cls, text: str) -> ActionKind:
        """Read ``noop``, ``sleep:SECONDS`` or ``cpu:MICROSECONDS``; `ValueError` if bad."""
        kind, sep, amount_text = text.partition(":")
        if kind == "noop" and not sep:
            return cls("noop")
        if kind not in ("sleep", "cpu"):
            raise ValueError(
                f"unknown action {text!r}; use noop, sleep:SECONDS or cpu:MICROSECONDS"
            )
        unit = "SECONDS" if kind == "sleep" else "MICROSECONDS"
        try:
            amount = float(amount_text)
        except ValueError:
            raise ValueError(f"action {text!r}: write {kind}:{unit}, a number >= 0") from None
        if not math.isfinite(amount) or amount < 0:
            raise ValueError(f"action {text!r}: {unit} must be a finite number >= 0")
        return cls(kind, amount)

    def __str__(self) -> str:
        return self.kind if self.kind == "noop" else f"{self.kind}:{self.amount:g}"

    def async_action(self) -> Callable[[Any], Awaitable[None]]:
        """The action as ``async def action(node)`` (``node`` is ignored), for Trio runners.

        dagtrio registers the very same function, so every runner pays the same call.
        """
        if self.kind == "sleep":
            seconds = self.amount

            async def sleep(node: Any) -> None:
                await trio.sleep(seconds)

            return sleep
        if self.kind == "cpu":
            iterations = self.iterations

            async def cpu(node: Any) -> None:
                burn(iterations)
                await trio.lowlevel.checkpoint()

            return cpu

        async def noop(node: Any) -> None:
            await trio.lowlevel.checkpoint()

        return noop

    def sync_action(self) -> Callable[..., None]:
        """The action as a plain function of any arguments, for thread-based runners
        and dagtrio's executors (it pickles: worker processes can run it)."""
        if self.kind == "sleep":
            return functools.partial(_sleep, self.amount)
        if self.kind == "cpu":
            return functools.partial(_cpu, self.iterations)
        return _noop

    @property
    def iterations(self) -> int:
        """`burn` iterations of one ``cpu`` node (calibrated now if the rate is unset)."""
        return round(self.amount * (self.rate or calibrate()))


def _sleep(seconds: float, *args: Any) -> None:
    time.sleep(seconds)


def _cpu(iterations: int, *args: Any) -> None:
    burn(iterations)


def _noop(*args: Any) -> None:
    return None


def _positive(name: str) -> Callable[[Any, Any, int], None]:
    def check(instance: Any, attribute: Any, value: int) -> None:
        check_int(name, value, 1)

    return check


def _shape(instance: Any, attribute: Any, value: str) -> None:
    if value not in SHAPES:
        raise ValueError(f"unknown shape {value!r}; choose from {', '.join(SHAPES)}")


def _hooks(instance: Any, attribute: Any, value: int) -> None:
    check_int("hooks", value, 0)


def _readers(instance: Any, attribute: Any, value: int) -> None:
    check_int("readers", value, 0)


#: where dagtrio's nodes run in a benchmark (``--executor``)
EXECUTORS = ("inline", "thread", "process")


def _executor(instance: Any, attribute: Any, value: str) -> None:
    if value not in EXECUTORS:
        raise ValueError(f"unknown executor {value!r}; choose from {', '.join(EXECUTORS)}")


@attrs.frozen
class Workload:
    """One benchmark: the same graph, action and limits for every runner.

    For ``shape="growth"``, ``nodes`` is the *final* size: dagtrio starts from the
    initial graph and grows it with a hook (``k`` children per marked node), while the
    baselines, which cannot grow a graph, run the final graph given up front.
    """

    shape: str = attrs.field(validator=_shape)
    nodes: int = attrs.field(validator=_positive("nodes"))
    width: int = attrs.field(default=100, validator=_positive("width"))
    density: float | None = None
    k: int = attrs.field(default=4, validator=_positive("k"))
    seed: int = 0
    action: str = "noop"
    max_parallel: int = attrs.field(default=64, validator=_positive("max_parallel"))
    hooks: int = attrs.field(default=0, validator=_hooks)
    #: ``run.events()`` readers dagtrio's run has, each reading every event
    readers: int = attrs.field(default=0, validator=_readers)
    #: where dagtrio runs each node: its Trio task (the async action), a worker thread
    #: or a worker process (the sync action); the baselines are not affected
    executor: str = attrs.field(default="inline", validator=_executor)
    #: `burn` iterations per microsecond for ``cpu`` actions, measured once by the
    #: invocation so that every runner's subprocess does the same work
    cpu_rate: float = 0.0

    def __attrs_post_init__(self) -> None:
        ActionKind.parse(self.action)  # fail here, not in a subprocess

    @property
    def action_kind(self) -> ActionKind:
        """`action` parsed, with the invocation's CPU rate."""
        return attrs.evolve(ActionKind.parse(self.action), rate=self.cpu_rate)

    def graph(self) -> Graph:
        """The graph every runner executes (for ``growth``, the final one)."""
        return make_graph(
            self.shape,
            self.nodes,
            width=self.width,
            density=self.density,
            k=self.k,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """This workload as JSON-ready data (`from_dict` reads it back)."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workload:
        """The workload `to_dict` wrote."""
        return cls(**data)
