"""A crawl that grows while it runs: dagtrio's coordinator, a planner hook and live events.

Run it with ``python examples/coordinator_demo.py`` (after ``pip install .``).

The run starts with a single node, ``fetch_index``, which returns the links of a small
made-up documentation site. Nobody knows the shape of the graph in advance: a planner
hook (an `EventHook`) watches the event stream and, each time a node that returned
links completes, adds one ``process`` node per new page plus a ``summarize`` node that
depends on all of them. Some pages are sections that link to more pages, so the graph
grows a second time while the first fan-out is still running.

What to look for in the output:

- ``added`` lines appear in the middle of the log, right after the ``done`` line of the
  node whose links they came from: the graph grows while it runs;
- several ``start`` lines in a row before any ``done``: actions run in parallel, never
  more than ``MAX_PARALLEL`` at once (the peak is measured inside the actions);
- ``guide/deploy`` links back to ``guide``, which is already planned, so that link adds
  nothing;
- ``changelog`` fails its first attempt and is retried; ``summarize`` nodes are plain
  (sync) functions, which dagtrio runs in worker threads;
- ``site_total`` is in the graph from the start but is *deferred* (``defer=True``): it
  starts only once the crawl can no longer grow, and counts every page, however many
  the planner ended up adding;
- the summary table at the end is built from the run's `RunReport`.

Everything is deterministic: page sizes and "network" delays come from a fixed table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import trio

import dagtrio
from dagtrio import (
    ActionRegistry,
    AddNodes,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    NodeCtx,
    NodeOutput,
    NodeSpec,
    RunReport,
)

MAX_PARALLEL = 4

#: the made-up site: page -> (words on it, seconds to fetch it, pages it links to)
SITE: dict[str, tuple[int, float, tuple[str, ...]]] = {
    "intro": (120, 0.10, ()),
    "guide": (300, 0.15, ("guide/install", "guide/config", "guide/deploy")),
    "api": (450, 0.20, ("api/core", "api/hooks")),
    "faq": (80, 0.05, ()),
    "changelog": (200, 0.08, ()),
    "guide/install": (210, 0.12, ()),
    "guide/config": (260, 0.18, ()),
    # Links back to a page that is already planned: the planner must not add it twice.
    "guide/deploy": (190, 0.10, ("guide",)),
    "api/core": (520, 0.22, ()),
    "api/hooks": (340, 0.14, ()),
}
INDEX_LINKS = ("intro", "guide", "api", "faq", "changelog")
#: pages whose first fetch fails, to show a retry
FLAKY = frozenset({"changelog"})


class ConcurrencyGauge:
    """Counts the actions running right now and remembers the peak.

    Actions enter it themselves, so the peak is what really ran at once, not what the
    coordinator believes. A lock, because sync actions run in worker threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def __enter__(self) -> ConcurrencyGauge:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.current -= 1


GAUGE = ConcurrencyGauge()
registry = ActionRegistry()


@registry.action()
async def fetch_index(ctx: NodeCtx) -> dict[str, Any]:
    """The root node: "downloads" the site's index and returns the pages it links to."""
    with GAUGE:
        await trio.sleep(0.10)
        return {"links": list(INDEX_LINKS)}


@registry.action()
async def process(ctx: NodeCtx) -> NodeOutput:
    """Fetch one page and count its words; a section page also returns its links."""
    page = ctx.inputs["page"]
    words, delay, links = SITE[page]
    with GAUGE:
        await trio.sleep(delay)
        if page in FLAKY and ctx.attempt == 1:
            # Failing by return value (rather than raising) lets the error carry a reason.
            return NodeOutput.failed("HTTP 503 from the fake server")
        return NodeOutput.ok({"page": page, "words": words, "links": list(links)})


@registry.action()
def summarize(ctx: NodeCtx) -> dict[str, Any]:
    """Add up the pages of one fan-out. Sync on purpose: dagtrio runs it in a thread."""
    with GAUGE:
        time.sleep(0.05)  # stands in for CPU-bound work that would block the event loop
        pages = ctx.upstream.values()
        return {"pages": len(pages), "words": sum(page["words"] for page in pages)}


@registry.action()
async def site_total(ctx: NodeCtx) -> dict[str, Any]:
    """Count every page the crawl processed: it runs last, when nothing can be added."""
    with GAUGE:
        await trio.lowlevel.checkpoint()
        pages = [out for node, out in ctx.cache.items() if node.startswith("process:")]
        return {"pages": len(pages), "words": sum(page["words"] for page in pages)}


class CrawlPlanner(EventHook):
    """Turns every completed node that returned ``links`` into new work.

    For each such node it adds, in one `AddNodes` batch, a ``process`` node per page not
    planned yet and a ``summarize`` node depending on all of them. A batch is applied
    whole or not at all, so a summary never waits on half a fan-out.
    """

    def __init__(self) -> None:
        # The planner remembers what it asked for instead of checking ``ctx.graph``:
        # the coordinator applies its commands a little later, so the live view is not
        # guaranteed to show pages planned for an earlier event yet, and re-adding an
        # existing id would get the whole batch rejected.
        self._planned: set[str] = set()

    async def handle(
        self, ctx: HookContext, event: ExecutionEvent
    ) -> Iterable[dagtrio.ExecutorCommand] | None:
        if not isinstance(event, dagtrio.NodeCompleted):
            return None
        outputs = event.outcome.outputs
        if not isinstance(outputs, Mapping) or not outputs.get("links"):
            return None
        source = event.node.node
        pages = [page for page in outputs["links"] if page not in self._planned]
        if not pages:
            return None
        self._planned.update(pages)
        return [AddNodes(plan_fan_out(source, pages, top_level=source == "fetch_index"))]


def plan_fan_out(source: str, pages: list[str], *, top_level: bool) -> list[NodeSpec]:
    """One ``process`` node per page and a ``summarize`` node over all of them."""
    specs = [
        NodeSpec(
            "process",
            id=f"process:{page}",
            deps=[source],
            inputs={"page": page},
            # Each top-level page gets a branch of its own; deeper pages inherit their
            # section's branch from their first dep, so "main/guide" holds the guide.
            branch=f"main/{page}" if top_level else None,
            try_count=2 if page in FLAKY else 1,
            retry_delay=0.05,
        )
        for page in pages
    ]
    name = "index" if top_level else source.removeprefix("process:")
    # Without an explicit branch the summary would join its first dep's branch; the
    # top-level one belongs to no single page, so it stays on "main".
    branch = "main" if top_level else None
    deps = [spec.id for spec in specs if spec.id is not None]
    specs.append(NodeSpec("summarize", id=f"summarize:{name}", deps=deps, branch=branch))
    return specs


def describe(event: ExecutionEvent) -> tuple[str, str, str]:
    """(kind, node, detail) for one log line."""
    ref = getattr(event, "node", None)
    node = ref.node if isinstance(ref, dagtrio.NodeRef) else ""
    match event:
        case dagtrio.NodeAdded(spec=spec, branch=branch):
            after = f" after {short_list(spec.deps)}" if spec.deps else ""
            return "added", node, f"branch={branch}{after}"
        case dagtrio.NodeStarted(attempt=attempt):
            return "start", node, f"attempt {attempt}" if attempt > 1 else ""
        case dagtrio.NodeCompleted(outcome=outcome):
            return "done", node, summarize_outputs(outcome.outputs)
        case dagtrio.NodeRetrying(error=error, delay=delay):
            return "retry", node, f"{error}; again in {delay:g}s"
        case dagtrio.NodeFailed(error=error) | dagtrio.NodeSkipped(reason=error):
            return type(event).__name__.removeprefix("Node").lower(), node, error
        case dagtrio.CommandRejected(reason=reason):
            return "rejected", "", reason
        case _:
            return type(event).__name__, node, ""


def short_list(ids: tuple[str, ...]) -> str:
    """``a``, ``a, b``, or ``a +3`` so long dep lists keep the log to one line each."""
    if len(ids) <= 2:
        return ", ".join(ids)
    return f"{ids[0]} +{len(ids) - 1}"


def summarize_outputs(outputs: Any) -> str:
    """A few words about a node's outputs, for the log and the table."""
    if not isinstance(outputs, Mapping):
        return "" if outputs is None else repr(outputs)[:30]
    parts = []
    if "pages" in outputs:
        parts.append(f"{outputs['pages']} pages")
    if "words" in outputs:
        parts.append(f"{outputs['words']} words")
    if outputs.get("links"):
        count = len(outputs["links"])
        parts.append(f"{count} link{'s' if count > 1 else ''}")
    return ", ".join(parts)


async def crawl() -> tuple[RunReport, float]:
    """Run the crawl, printing each event as it streams by; return the report and wall time."""
    coordinator = Coordinator(registry, hooks=[CrawlPlanner()], max_parallel=MAX_PARALLEL)
    initial = [
        NodeSpec("fetch_index", id="fetch_index"),
        # A fan-in over a fan-out of unknown size: ready once its dep succeeded and
        # nothing else in its branch can still run or be added by the planner.
        NodeSpec("site_total", id="site_total", deps=["fetch_index"], defer=True),
    ]
    start = trio.current_time()
    wall_start = time.perf_counter()
    print(f"{'time':>7}  {'event':<8}  {'node':<22}  detail")
    # Subscribe as soon as the run is open: the stream shows events from the moment of
    # subscription, and it ends by itself when the run ends.
    async with coordinator.open_run(initial, dag_name="crawl") as run, run.events() as events:
        async for event in events:
            kind, node, detail = describe(event)
            # When the reader saw the event: a hair after it happened.
            elapsed = trio.current_time() - start
            print(f"{elapsed:6.3f}s  {kind:<8}  {node:<22}  {detail}".rstrip())
    return await run.wait(), time.perf_counter() - wall_start


def print_summary(report: RunReport, wall_time: float, initial_nodes: int) -> None:
    """A table of every node from the report, then the run's totals."""
    print()
    header = f"{'node':<22}  {'status':<9}  {'tries':>5}  {'duration':>8}  outputs"
    print(header)
    print("-" * len(header))
    for record in sorted(report.nodes.values(), key=lambda r: r.started_at or 0.0):
        duration = "-" if record.duration is None else f"{record.duration:.3f}s"
        outputs = summarize_outputs(record.outputs) or (record.error or "")
        print(
            f"{record.id:<22}  {record.status.value:<9}  {record.attempts:>5}  "
            f"{duration:>8}  {outputs}"
        )
    print()
    print(f"success:         {report.success}")
    print(f"nodes:           {len(report.nodes)} ({initial_nodes} initial, grown while running)")
    print(f"wall time:       {wall_time:.3f}s")
    print(f"peak running:    {GAUGE.peak} actions at once (max_parallel={MAX_PARALLEL})")


def main() -> None:
    report, wall_time = trio.run(crawl)
    print_summary(report, wall_time, initial_nodes=2)


if __name__ == "__main__":
    main()
