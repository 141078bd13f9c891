"""Retry policy (DESIGN.md §4): which failures are retried, and how long each retry waits."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import trio
from helpers import run_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    Coordinator,
    InvalidSpecError,
    NodeCtx,
    NodeOutput,
    NodeRetrying,
    NodeSpec,
    NodeStatus,
    PermanentError,
)
from dagtrio.testing import RecordingHook, check_run


class Flaky(Exception):
    """A failure worth retrying."""


def policy_registry(**retry_on: Any) -> ActionRegistry:
    """``fail``: raises ``inputs['raise']`` (a name) until attempt ``inputs['until']``."""
    registry = ActionRegistry()
    kinds: dict[str, type[BaseException]] = {
        "Flaky": Flaky,
        "ValueError": ValueError,
        "OSError": OSError,
        "PermanentError": PermanentError,
    }

    @registry.action(**retry_on)
    async def fail(ctx: NodeCtx) -> Any:
        await trio.lowlevel.checkpoint()
        if ctx.attempt < ctx.inputs.get("until", math.inf):
            if ctx.inputs.get("returns"):
                return NodeOutput.failed("said no", retry=ctx.inputs.get("retry", True))
            if ctx.inputs.get("hang"):
                await trio.sleep_forever()
            raise kinds[ctx.inputs.get("raise", "Flaky")](f"attempt {ctx.attempt}")
        return ctx.attempt

    return registry


async def run_one(registry: ActionRegistry, spec: NodeSpec, run_id: str = "r") -> Any:
    recorder = RecordingHook()
    report = await Coordinator(registry, [recorder]).run([spec], run_id=run_id)
    check_run(report, recorder.events, try_counts={spec.id or "": spec.try_count})
    return report.nodes[spec.id or ""], recorder.events


def test_permanent_error_ends_the_node_at_once() -> None:
    async def main() -> None:
        spec = NodeSpec("fail", id="n", try_count=5, inputs={"raise": "PermanentError"})
        record, events = await run_one(policy_registry(), spec)
        assert record.status is NodeStatus.FAILED
        assert record.attempts == 1
        assert record.error == "PermanentError: attempt 1"
        assert not [e for e in events if isinstance(e, NodeRetrying)]

    run_mock(main)


def test_failed_with_retry_false_ends_the_node_and_plain_failed_is_retried() -> None:
    async def main() -> None:
        spec = NodeSpec("fail", id="n", try_count=4, inputs={"returns": True, "retry": False})
        record, _ = await run_one(policy_registry(), spec)
        assert (record.status, record.attempts, record.error) == (NodeStatus.FAILED, 1, "said no")
        # Without retry=False, a returned failure uses every attempt (retry_on judges
        # exceptions only).
        spec = NodeSpec("fail", id="n", try_count=4, inputs={"returns": True, "until": 3})
        record, _ = await run_one(policy_registry(retry_on=ValueError), spec)
        assert (record.status, record.attempts) == (NodeStatus.SUCCEEDED, 3)

    run_mock(main)


@pytest.mark.parametrize(
    ("retry_on", "raised", "attempts"),
    [
        (Flaky, "Flaky", 3),
        ((Flaky, ValueError), "ValueError", 3),
        ((ValueError,), "Flaky", 1),
        (OSError, "OSError", 3),
        (lambda exc: "1" in str(exc), "Flaky", 2),  # retried after attempt 1 only
        (lambda exc: False, "Flaky", 1),
    ],
)
def test_retry_on_decides_which_exceptions_are_retried(
    retry_on: Any, raised: str, attempts: int
) -> None:
    async def main() -> None:
        spec = NodeSpec("fail", id="n", try_count=3, inputs={"raise": raised})
        record, _ = await run_one(policy_registry(retry_on=retry_on), spec)
        assert record.status is NodeStatus.FAILED
        assert record.attempts == attempts

    run_mock(main)


def test_a_timeout_is_judged_as_a_timeout_error() -> None:
    async def main() -> None:
        hang = {"hang": True}
        spec = NodeSpec("fail", id="n", try_count=3, timeout=1, inputs=hang)
        # No retry_on: every failure is retried, a timeout too.
        record, _ = await run_one(policy_registry(), spec)
        assert record.attempts == 3
        # TimeoutError is an OSError: retried.
        record, _ = await run_one(policy_registry(retry_on=OSError), spec)
        assert record.attempts == 3
        # A policy that does not name it: a timeout is not retried.
        record, _ = await run_one(policy_registry(retry_on=Flaky), spec)
        assert record.attempts == 1
        assert record.error is not None and record.error.startswith("timed out")
        seen: list[BaseException] = []
        record, _ = await run_one(policy_registry(retry_on=lambda e: seen.append(e)), spec)
        assert record.attempts == 1
        assert type(seen[0]) is TimeoutError and "timed out after 1s" in str(seen[0])

    run_mock(main)


def test_a_retry_on_predicate_that_raises_fails_the_node_not_the_run() -> None:
    async def main() -> None:
        spec = NodeSpec("fail", id="n", try_count=3)
        record, _ = await run_one(policy_registry(retry_on=lambda e: 1 / 0), spec)
        assert (record.status, record.attempts) == (NodeStatus.FAILED, 1)

    run_mock(main)


@pytest.mark.parametrize("bad", ["OSError", 3, OSError("x"), (OSError, "x"), int])
def test_retry_on_that_is_neither_exception_types_nor_callable_is_refused(bad: Any) -> None:
    registry = ActionRegistry()
    with pytest.raises(TypeError, match="retry_on"):
        registry.action(retry_on=bad)
    assert "f" not in registry


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_retry_delay", -1, "max_retry_delay must be >= 0"),
        ("max_retry_delay", "1", "max_retry_delay must be a number"),
        ("retry_jitter", 1.5, "retry_jitter must be a fraction from 0 to 1"),
        ("retry_jitter", -0.1, "retry_jitter must be >= 0"),
        ("retry_jitter", True, "retry_jitter must be a number"),
    ],
)
def test_bad_retry_fields_are_refused_naming_the_node(field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=f"node 'n': {message}"):
        NodeSpec("fail", id="n", **{field: value})


def expected_delays(spec: NodeSpec) -> list[float]:
    """The delays DESIGN.md §4 promises, without jitter."""
    out = []
    for attempt in range(1, spec.try_count):
        delay = spec.retry_delay * 2.0 ** (attempt - 1)
        if spec.max_retry_delay is not None:
            delay = min(delay, spec.max_retry_delay)
        out.append(delay)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    try_count=st.integers(1, 6),
    retry_delay=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
    cap=st.none() | st.sampled_from([0.0, 1.0, 2.5, 100.0]),
    jitter=st.sampled_from([0.0, 0.25, 1.0]),
    run_id=st.text("abc", min_size=1, max_size=3),
)
def test_delays_double_are_capped_jittered_and_repeat_for_a_run_id(
    try_count: int, retry_delay: float, cap: float | None, jitter: float, run_id: str
) -> None:
    spec = NodeSpec(
        "fail",
        id="n",
        try_count=try_count,
        retry_delay=retry_delay,
        max_retry_delay=cap,
        retry_jitter=jitter,
    )

    async def delays() -> list[float]:
        _, events = await run_one(policy_registry(), spec, run_id)
        return [e.delay for e in events if isinstance(e, NodeRetrying)]

    async def main() -> None:
        starts: list[float] = []
        registry = policy_registry()
        # Watch the attempts start: each waits the delay its NodeRetrying announced.
        original = registry.get("fail")

        class Timed:
            name = "fail"

            async def execute(self, ctx: NodeCtx) -> NodeOutput:
                starts.append(trio.current_time())
                return await original.execute(ctx)

        registry.register(Timed(), replace=True)  # type: ignore[arg-type]
        _, events = await run_one(registry, spec, run_id)
        waited = [e.delay for e in events if isinstance(e, NodeRetrying)]
        promised = expected_delays(spec)
        assert len(waited) == len(promised)
        for got, full in zip(waited, promised, strict=True):
            assert (1 - jitter) * full - 1e-9 <= got <= full + 1e-9
            if not jitter:
                assert got == full
        # Under a MockClock each attempt starts exactly its delay after the last ended
        # (the actions end at once).
        gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
        assert gaps == pytest.approx(waited, abs=1e-6)
        # The same run id waits the same delays again.
        assert await delays() == waited

    run_mock(main)


def test_jitter_spreads_delays_across_nodes() -> None:
    async def main() -> None:
        registry = policy_registry()
        specs = [
            NodeSpec("fail", id=f"n{i}", try_count=2, retry_delay=10, retry_jitter=1)
            for i in range(20)
        ]
        recorder = RecordingHook()
        await Coordinator(registry, [recorder]).run(specs, run_id="spread")
        delays = {e.delay for e in recorder.events if isinstance(e, NodeRetrying)}
        assert len(delays) == 20
        assert all(0 <= d <= 10 for d in delays)

    run_mock(main)
