"""OpenTelemetry spans: the tree of a run, read back from the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from dagtrio import ActionRegistry, Coordinator, NodeSpec, NodeStatus, RunReport
from dagtrio.testing import dags, run_graph
from dagtrio.tracing import OpenTelemetry


def exporter_and_provider() -> tuple[InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def registry(
    fails: dict[str, int], otel: OpenTelemetry, provider: TracerProvider
) -> ActionRegistry:
    tracer = provider.get_tracer("user-code")
    reg = ActionRegistry()

    @reg.action()
    async def work(ctx: Any) -> int:
        # The action's own span, nested under its attempt through the explicit context.
        with tracer.start_as_current_span("inside", context=otel.context(ctx)):
            await trio.sleep(1)
        if ctx.attempt <= fails.get(ctx.node_id, 0):
            raise ValueError(f"{ctx.node_id} attempt {ctx.attempt}")
        return ctx.attempt

    return reg


def check_tree(spans: list[ReadableSpan], report: RunReport) -> None:
    """The spans mirror the report: run > branches by path > attempts > action spans."""
    by_id = {span.context.span_id: span for span in spans}
    (root,) = [s for s in spans if s.name == "dagtrio.run"]
    assert root.parent is None
    assert root.attributes is not None and root.attributes["dagtrio.run.id"] == report.run_id
    assert (root.status.status_code is StatusCode.ERROR) is (not report.success)
    branches = {
        s.name: s
        for s in spans
        if s.attributes
        and "dagtrio.node.id" not in s.attributes
        and s.name not in ("dagtrio.run", "inside")
    }
    for path, span in branches.items():
        parent_path = path.rpartition("/")[0]
        assert span.parent is not None
        parent = by_id[span.parent.span_id]
        assert parent is (branches[parent_path] if parent_path else root), path
    attempts = [s for s in spans if s.attributes and "dagtrio.node.id" in s.attributes]
    for node_id, record in report.nodes.items():
        mine = sorted(
            (s for s in attempts if s.attributes and s.attributes["dagtrio.node.id"] == node_id),
            key=lambda s: s.attributes["dagtrio.attempt"] if s.attributes else 0,
        )
        assert [s.attributes["dagtrio.attempt"] for s in mine if s.attributes] == list(
            range(1, record.attempts + 1)
        )
        for span in mine:
            assert span.attributes is not None and span.parent is not None
            assert by_id[span.parent.span_id] is branches[record.branch]
            assert span.name == record.action
            failed = span.attributes["dagtrio.status"] == "failed"
            assert (span.status.status_code is StatusCode.ERROR) is failed
            if failed:
                (event,) = [e for e in span.events if e.name == "exception"]
                assert event.attributes is not None
                assert event.attributes["exception.type"] == "ValueError"
        if mine:
            last = mine[-1].attributes
            assert last is not None
            allowed = {last["dagtrio.status"]}
            if last["dagtrio.status"] == "failed":
                allowed.add("cancelled")  # cancelled while waiting for its retry
            assert record.status.value in allowed
    # An action's own span nests under its attempt's.
    for inside in (s for s in spans if s.name == "inside"):
        assert inside.parent is not None
        assert by_id[inside.parent.span_id] in attempts
    retries = sum(
        1 for span in branches.values() for event in span.events if event.name == "dagtrio.retry"
    )
    failed_then_retried = sum(
        1
        for s in attempts
        if s.attributes
        and s.attributes["dagtrio.status"] == "failed"
        and s.attributes["dagtrio.attempt"]
        < report.nodes[str(s.attributes["dagtrio.node.id"])].attempts
    )
    assert retries >= failed_then_retried
    assert all(span.end_time is not None for span in spans)


@given(
    specs=dags(action="work", max_nodes=10),
    data=st.data(),
    on_failure=st.sampled_from(["skip", "fail_fast"]),
)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_span_trees_match_the_report(
    specs: list[NodeSpec], data: st.DataObject, on_failure: str
) -> None:
    exporter, provider = exporter_and_provider()
    otel = OpenTelemetry(tracer_provider=provider)
    branches = ["main", "main/a", "main/a/b", "side"]
    fails = {str(s.id): data.draw(st.integers(0, 2), label=f"fails {s.id}") for s in specs}
    placed = [
        attrs.evolve(
            spec,
            branch=data.draw(st.sampled_from(branches), label=f"branch {spec.id}"),
            try_count=data.draw(st.integers(1, 3), label=f"tries {spec.id}"),
        )
        for spec in specs
    ]
    run = run_graph(
        registry(fails, otel, provider), placed, instruments=[otel], on_failure=on_failure
    )
    check_tree(list(exporter.get_finished_spans()), run.report)


def test_an_action_cancelled_before_its_first_step_still_nests() -> None:
    # Eight nodes and a failing one end at the same moment; a child of a node that
    # completed starts in that step, and fail_fast cancels it before its first step:
    # its action's span opens after its attempt's span ended, and must still nest
    # under it (the case hypothesis found). Trio orders each step's tasks at random,
    # so a few runs meet that order.
    specs = [NodeSpec("work", id="f")]
    for i in range(8):
        specs += [NodeSpec("work", id=f"x{i}"), NodeSpec("work", id=f"y{i}", deps=[f"x{i}"])]
    for _ in range(10):
        exporter, provider = exporter_and_provider()
        otel = OpenTelemetry(tracer_provider=provider)
        run = run_graph(
            registry({"f": 1}, otel, provider), specs, instruments=[otel], on_failure="fail_fast"
        )
        check_tree(list(exporter.get_finished_spans()), run.report)


def test_a_failed_run_and_a_cancelled_attempt() -> None:
    exporter, provider = exporter_and_provider()
    otel = OpenTelemetry(tracer_provider=provider)
    reg = ActionRegistry()

    @reg.action()
    async def slow(ctx: Any) -> None:
        await trio.sleep(100)

    @reg.action()
    async def bad(ctx: Any) -> None:
        await trio.sleep(1)
        raise KeyError("missing")

    async def main() -> RunReport:
        coordinator = Coordinator(reg, instruments=[otel], on_failure="fail_fast")
        return await coordinator.run([NodeSpec("slow", id="s"), NodeSpec("bad", id="b")])

    report = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert not report.success
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["dagtrio.run"].status.status_code is StatusCode.ERROR
    slow_span = spans["slow"]
    assert slow_span.attributes is not None
    assert slow_span.attributes["dagtrio.status"] == "cancelled"
    assert slow_span.status.status_code is StatusCode.UNSET
    bad_span = spans["bad"]
    assert bad_span.status.status_code is StatusCode.ERROR
    (event,) = bad_span.events
    assert event.attributes is not None and event.attributes["exception.type"] == "KeyError"
    assert otel.context(type("Ctx", (), {"run_id": "x", "node_id": "s", "attempt": 1})()) is None  # type: ignore[arg-type]


def test_the_global_provider_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    exporter, provider = exporter_and_provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    otel = OpenTelemetry()
    reg = ActionRegistry()

    @reg.action()
    async def ok(ctx: Any) -> None:
        return None

    run_graph(reg, [NodeSpec("ok", id="a")], instruments=[otel])
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["dagtrio.run", "main", "ok"]
    assert NodeStatus.SUCCEEDED.value == "succeeded"
