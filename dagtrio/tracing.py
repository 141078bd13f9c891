"""OpenTelemetry spans for dagtrio runs: ``Coordinator(instruments=[OpenTelemetry()])``.

Needs the OpenTelemetry API (``pip install "dagtrio[otel]"``); the application brings
the SDK and the exporter of its choice, as with any instrumented library. This is the
only module of dagtrio that imports ``opentelemetry``.

The spans of one run form a tree that mirrors it:

- ``dagtrio.run`` for the whole run (``dagtrio.run.id``, ``dagtrio.dag``), its status
  an error when the run failed;
- one span per branch path, named by the path and nested by it (``main/a/b`` under
  ``main/a`` under ``main``), opened at the branch's first attempt and closed with the
  run; a retry is an event on it (``dagtrio.retry``: node, attempt, delay, error);
- one span per attempt, named by its action, under its branch's span, with
  ``dagtrio.node.id``, ``dagtrio.action``, ``dagtrio.attempt``, ``dagtrio.branch``,
  ``dagtrio.status`` (succeeded, failed, cancelled) and ``dagtrio.ended`` (finished,
  killed, abandoned); a failed attempt has error status and an ``exception`` event.

An action's own spans nest under its attempt when it passes the attempt's context
explicitly (Trio starts every task in a copy of the context it was started from, so the
coordinator's current span cannot reach the action by itself)::

    otel = OpenTelemetry()

    @registry.action()
    async def fetch(ctx):
        with tracer.start_as_current_span("GET", context=otel.context(ctx)):
            ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Status, StatusCode
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError(
        'dagtrio.tracing needs the OpenTelemetry API: pip install "dagtrio[otel]"'
    ) from exc

from ._model.spec import Ending, NodeCtx, NodeStatus
from ._runtime.instruments import Attempt, Instrument

if TYPE_CHECKING:
    from ._model.report import RunReport

__all__ = ["OpenTelemetry"]

_VERSION = "0.1.0"


class _RunSpans:
    __slots__ = ("attempts", "branches", "ended", "root")

    def __init__(self, root: Span) -> None:
        self.root = root
        #: branch path -> its open span
        self.branches: dict[str, Span] = {}
        #: (node id, attempt number) -> the attempt's open span
        self.attempts: dict[tuple[str, int], Span] = {}
        #: (node id, attempt number) -> the ended attempt's span context (small: ids
        #: only), for an action that starts after its attempt was over (cancelled
        #: before its first step)
        self.ended: dict[tuple[str, int], SpanContext] = {}


class OpenTelemetry(Instrument):
    """An instrument that records each run as a tree of OpenTelemetry spans.

    ``tracer_provider``: where the spans go; None (the default) is the global one
    (``opentelemetry.trace.set_tracer_provider``). One instance may watch many runs
    at once, of one coordinator or several.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("dagtrio", _VERSION, tracer_provider=tracer_provider)
        self._runs: dict[str, _RunSpans] = {}

    def context(self, ctx: NodeCtx) -> Context | None:
        """The OpenTelemetry context of the attempt ``ctx`` belongs to, for an action's
        own spans (``tracer.start_as_current_span(name, context=otel.context(ctx))``);
        None outside a run this instrument watches."""
        spans = self._runs.get(ctx.run_id)
        if spans is None:
            return None
        key = (ctx.node_id, ctx.attempt)
        span = spans.attempts.get(key)
        if span is None:
            ended = spans.ended.get(key)
            if ended is None:
                return None
            span = trace.NonRecordingSpan(ended)
        return trace.set_span_in_context(span)

    def run_started(self, run_id: str, dag_name: str) -> None:
        """Open the run's span."""
        root = self._tracer.start_span(
            "dagtrio.run",
            context=Context(),  # a root: a run is not part of whatever the caller traces
            attributes={"dagtrio.run.id": run_id, "dagtrio.dag": dag_name},
        )
        self._runs[run_id] = _RunSpans(root)

    def _branch(self, spans: _RunSpans, branch: str) -> Span:
        span = spans.branches.get(branch)
        if span is None:
            parent_path, _, _ = branch.rpartition("/")
            parent = spans.root if not parent_path else self._branch(spans, parent_path)
            span = self._tracer.start_span(
                branch,
                context=trace.set_span_in_context(parent),
                attributes={"dagtrio.branch": branch},
            )
            spans.branches[branch] = span
        return span

    def attempt_started(self, attempt: Attempt) -> None:
        """Open the attempt's span under its branch's."""
        spans = self._runs.get(attempt.run_id)
        if spans is None:
            return
        branch = self._branch(spans, attempt.branch)
        spans.attempts[(attempt.node_id, attempt.number)] = self._tracer.start_span(
            attempt.action,
            context=trace.set_span_in_context(branch),
            attributes={
                "dagtrio.node.id": attempt.node_id,
                "dagtrio.action": attempt.action,
                "dagtrio.attempt": attempt.number,
                "dagtrio.branch": attempt.branch,
            },
        )

    def attempt_finished(
        self, attempt: Attempt, status: NodeStatus, ended: Ending, error: str | None
    ) -> None:
        """Close the attempt's span with its status (an error and its exception if it
        failed)."""
        spans = self._runs.get(attempt.run_id)
        span = (
            None if spans is None else spans.attempts.pop((attempt.node_id, attempt.number), None)
        )
        if span is None:
            return
        assert spans is not None
        spans.ended[(attempt.node_id, attempt.number)] = span.get_span_context()
        span.set_attribute("dagtrio.status", status.value)
        span.set_attribute("dagtrio.ended", ended)
        if status is NodeStatus.FAILED:
            message = error or "failed"
            kind, sep, text = message.partition(": ")
            exception: dict[str, Any] = {"exception.message": text if sep else message}
            if sep and kind.isidentifier():
                exception["exception.type"] = kind
            span.add_event("exception", exception)
            span.set_status(Status(StatusCode.ERROR, message))
        elif status is NodeStatus.CANCELLED and error:
            span.set_attribute("dagtrio.reason", error)
        span.end()

    def attempt_retrying(self, attempt: Attempt, error: str, delay: float) -> None:
        """Note the retry on the branch's span."""
        spans = self._runs.get(attempt.run_id)
        if spans is None:
            return
        self._branch(spans, attempt.branch).add_event(
            "dagtrio.retry",
            {
                "dagtrio.node.id": attempt.node_id,
                "dagtrio.attempt": attempt.number,
                "dagtrio.retry.delay": delay,
                "dagtrio.error": error,
            },
        )

    def run_finished(self, report: RunReport) -> None:
        """Close the branch spans, deepest first, then the run's."""
        spans = self._runs.pop(report.run_id, None)
        if spans is None:
            return
        for span in spans.attempts.values():  # (every attempt has ended by now)
            span.end()
        for path in sorted(spans.branches, key=lambda p: p.count("/"), reverse=True):
            spans.branches[path].end()
        counts = {status.value: n for status, n in report.counts().items() if n}
        for status, n in counts.items():
            spans.root.set_attribute(f"dagtrio.nodes.{status}", n)
        if not report.success:
            spans.root.set_status(Status(StatusCode.ERROR, report.error or "run failed"))
        spans.root.end()
