"""`run_graph`: a whole run in virtual time, recorded and checked, in one synchronous call."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs
import trio
import trio.testing

from .._actions.registry import ActionRegistry
from .._hooks.hook import HookLike
from .._model.events import CommandRejected, ExecutionEvent
from .._model.report import RunReport
from .._model.spec import NodeSpec
from .._runtime.coordinator import Coordinator
from .checks import check_run
from .hooks import RecordingHook

__all__ = ["GraphRun", "RunGraph", "run_graph"]


@attrs.frozen
class GraphRun:
    """What `run_graph` returns: the run's report and every event it emitted, in order."""

    report: RunReport
    events: tuple[ExecutionEvent, ...]


def run_graph(
    registry: ActionRegistry,
    specs: Iterable[NodeSpec],
    *,
    hooks: Iterable[HookLike] = (),
    check: bool = True,
    rejected: int | Callable[[CommandRejected], bool] = 0,
    try_counts: Mapping[str, int] | None = None,
    limit: float = 1e6,
    dag_name: str = "dag",
    **options: Any,
) -> GraphRun:
    """Run ``specs`` to the end in a fresh ``trio.run`` under an autojumping MockClock.

    Why: a property test runs hundreds of graphs; on Trio's real clock every
    ``trio.sleep`` and retry delay is spent, under the MockClock time leaps to the next
    deadline as soon as every task waits, so a run of simulated minutes takes
    milliseconds, and the same graph always interleaves the same way. It is a plain
    function (no fixture needed, no event loop running), so it works inside hypothesis'
    ``@given`` as it is.

    ``hooks`` run before a `RecordingHook` that records every event; ``options`` go
    to the `Coordinator` (``max_parallel``, ``on_failure``, ``instruments``…). With
    ``check`` (the default) `check_run` is applied to the report and the events, with
    ``rejected`` and ``try_counts``. A run that is still going after ``limit`` virtual
    seconds (a hang: under autojump a deadlock reaches it at once) raises
    `trio.TooSlowError`. The actions run in this virtual time too: an action that
    blocks its thread (``time.sleep``) still takes real time.
    """
    recorder = RecordingHook(name="dagtrio.testing.run_graph")
    coordinator = Coordinator(registry, [*hooks, recorder], **options)
    spec_list = list(specs)

    async def main() -> RunReport:
        with trio.fail_after(limit):
            return await coordinator.run(spec_list, dag_name=dag_name)

    report = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if check:
        check_run(report, recorder.events, try_counts=try_counts, rejected=rejected)
    return GraphRun(report, tuple(recorder.events))


class RunGraph(Protocol):
    """The type of `run_graph`, for annotating the plugin's ``run_graph`` fixture."""

    def __call__(
        self,
        registry: ActionRegistry,
        specs: Iterable[NodeSpec],
        *,
        hooks: Iterable[HookLike] = (),
        check: bool = True,
        rejected: int | Callable[[CommandRejected], bool] = 0,
        try_counts: Mapping[str, int] | None = None,
        limit: float = 1e6,
        dag_name: str = "dag",
        **options: Any,
    ) -> GraphRun: ...
