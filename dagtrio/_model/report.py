"""What a run did: one record per node, and the run's verdict."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from .spec import Ending, NodeStatus

__all__ = ["NodeRecord", "RunReport"]


@attrs.frozen(slots=True)
class NodeRecord:
    """Where one node stood when the report was taken.

    Times are seconds since the epoch, read from the run's Trio clock (so they follow a
    `trio.testing.MockClock` in tests); ``None`` until the node first started / ended.
    ``attempts`` counts attempts started; ``outputs`` is set only for a node that
    succeeded; ``error`` says why a node failed, was cancelled or was skipped.
    ``cached`` is true for a node that succeeded by reusing the outputs of an earlier
    computation of the same cache key (``Coordinator(cache=...)``) instead of running.
    ``traceback`` is the formatted traceback of the last failed attempt, when it
    raised (a timeout or a returned ``NodeOutput.failed`` has none): ``error`` says
    what went wrong, this says where. ``ended`` says what became of the work of the
    last attempt when it was cancelled or timed out (see `Ending`), else ``None``.
    ``supplied`` is true for a node that succeeded with outputs given by `CompleteNode`
    (or ``resume(outputs=...)``) instead of by running. ``held`` is true for a failed
    node that waits for a decision (``on_failure="hold"``): `RetryNode` or
    `CompleteNode`; its dependents wait with it.
    """

    id: str
    action: str
    branch: str
    deps: tuple[str, ...]
    status: NodeStatus
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    outputs: Any = None
    cached: bool = False
    traceback: str | None = None
    ended: Ending | None = None
    supplied: bool = False
    held: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the end, if both happened."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@attrs.frozen(slots=True)
class RunReport:
    """The outcome of a run: ``success`` is true only if every node succeeded.

    ``error`` says why the run as a whole failed (a hook error, a cancellation), when
    it did. Serialise it with ``dagtrio.converter`` (or `to_json` / `from_json`) to store
    or ship it; it round-trips exactly as long as node outputs are JSON values.
    """

    run_id: str
    dag_name: str
    success: bool
    nodes: Mapping[str, NodeRecord]
    started_at: float
    finished_at: float | None
    error: str | None = None

    def counts(self) -> dict[NodeStatus, int]:
        """How many nodes ended in each status (statuses with no node are left out)."""
        return dict(Counter(record.status for record in self.nodes.values()))

    def outputs(self) -> dict[str, Any]:
        """Outputs of every succeeded node, by id."""
        return {
            node_id: record.outputs
            for node_id, record in self.nodes.items()
            if record.status is NodeStatus.SUCCEEDED
        }

    def to_json(self, **dumps_kwargs: Any) -> str:
        """This report as a JSON document (see `dagtrio.converter`)."""
        from .convert import dumps

        return dumps(self, **dumps_kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunReport:
        """Rebuild a report written by `to_json`."""
        from .convert import loads

        return loads(text, cls)
