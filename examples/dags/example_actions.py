"""The actions (and the crawl's hook) of the DAG files in this folder.

Each DAG file names this module (``actions: example_actions``); ``dagtrio run`` finds
it because a DAG file's own folder is importable. The work is simulated, with short
sleeps, so that the live display has something to show and the files run anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import trio

from dagtrio import (
    ActionRegistry,
    AddNodes,
    EventHook,
    ExecutionEvent,
    ExecutorCommand,
    HookContext,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    PermanentError,
    SetNodeInputs,
)

registry = ActionRegistry()

# ------------------------------------------------------------------ crawl.yaml

#: A small site: each page's links.
SITE: Mapping[str, tuple[str, ...]] = {
    "/": ("/docs", "/blog", "/about"),
    "/docs": ("/docs/install", "/docs/tutorial", "/docs/api"),
    "/docs/tutorial": ("/docs/api", "/docs/tutorial/2"),
    "/docs/tutorial/2": (),
    "/docs/install": (),
    "/docs/api": ("/docs/api/run", "/docs/api/hooks"),
    "/docs/api/run": (),
    "/docs/api/hooks": (),
    "/blog": ("/blog/1", "/blog/2", "/blog/3"),
    "/blog/1": ("/about",),
    "/blog/2": (),
    "/blog/3": ("/blog/2",),
    "/about": (),
}


@registry.action()
async def fetch(ctx: NodeCtx) -> dict[str, Any]:
    """Fetch one page: its links and its size."""
    page = ctx.inputs["page"]
    await trio.sleep(0.05 + 0.01 * len(page))
    return {"page": page, "links": list(SITE.get(page, ())), "bytes": 1000 + 37 * len(page)}


@registry.action()
async def site_report(ctx: NodeCtx) -> dict[str, Any]:
    """Fan in: the pages the crawl found. A deferred node (``defer: true``): it starts
    once the crawl below its branch is quiet, however far the planner grew it."""
    pages = list(ctx.inputs.get("pages", ()))
    return {"pages": len(pages), "deepest": max(pages, key=lambda p: p.count("/"), default="/")}


class CrawlPlanner(EventHook):
    """Grows the crawl: each fetched page adds a ``fetch`` node per link not seen yet."""

    def __init__(self) -> None:
        self.seen: set[str] = {"/"}

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> list[ExecutorCommand]:
        if (
            not isinstance(event, NodeCompleted)
            or ctx.graph.spec(event.node.node).action != "fetch"
        ):
            return []
        depth = int(ctx.graph.spec(event.node.node).inputs.get("depth", 0))
        links = [link for link in event.outcome.outputs["links"] if link not in self.seen]
        self.seen.update(links)
        if depth >= 3 or not links:
            return []
        specs = [
            NodeSpec(
                "fetch",
                id=f"fetch:{link}",
                deps=[event.node.node],
                inputs={"page": link, "depth": depth + 1},
                branch="main/crawl",
            )
            for link in links
        ]
        # The report's list of pages grows with the crawl; it is deferred, so it runs
        # only once nothing on its branch can add to the list any more.
        return [AddNodes(specs), SetNodeInputs("site_report", {"pages": sorted(self.seen)})]


# ------------------------------------------------------------------ etl.yaml


@registry.action()
async def extract(ctx: NodeCtx) -> list[dict[str, Any]]:
    """Read one table's rows. The ``orders`` source times out on its first attempt
    (as a busy database does); ``try_count`` and ``retry_delay`` take care of it."""
    table = ctx.inputs["table"]
    await trio.sleep(0.1)
    if ctx.inputs.get("flaky") and ctx.attempt == 1:
        raise TimeoutError(f"{table}: the database did not answer in time")
    return [{"table": table, "row": i, "amount": (i * 37) % 101} for i in range(ctx.inputs["rows"])]


@registry.action()
async def transform(ctx: NodeCtx) -> dict[str, Any]:
    """Sum the amounts of every upstream table."""
    await trio.sleep(0.05)
    rows = [row for dep in ctx.upstream.values() for row in dep]
    return {"rows": len(rows), "total": sum(row["amount"] for row in rows)}


@registry.action()
async def load(ctx: NodeCtx) -> str:
    """Write the result (here: describe it)."""
    await trio.sleep(0.05)
    (summary,) = ctx.upstream.values()
    return f"{ctx.inputs['target']}: {summary['rows']} rows, total {summary['total']}"


# ------------------------------------------------------------------ approval.yaml


@registry.action()
async def draft(ctx: NodeCtx) -> str:
    """Write the text that needs a person's approval."""
    await trio.sleep(0.05)
    return f"Release notes for {ctx.inputs['version']}"


@registry.action()
async def approve(ctx: NodeCtx) -> dict[str, Any]:
    """Wait for a person. Without an approval in its inputs it fails for good; the file
    sets ``on_failure: hold``, so the node is held, the rest of the run goes on, and
    the run comes to rest naming it. A person supplies the decision in the browser
    (``dagtrio run approval.yaml --serve``: complete it with ``{"approved_by": "ana"}``)
    or with ``dagtrio resume JOURNAL RUN_ID --actions example_actions --output approve=...``."""
    decision = ctx.inputs.get("approved_by")
    if not decision:
        raise PermanentError(f"{ctx.upstream['draft']!r} waits for a person's approval")
    return {"approved_by": decision}


@registry.action()
async def publish(ctx: NodeCtx) -> str:
    """Publish what was approved."""
    await trio.sleep(0.05)
    return f"published, approved by {ctx.upstream['approve']['approved_by']}"


@registry.action()
async def translate(ctx: NodeCtx) -> str:
    """Work that needs no approval and goes on while the approval waits."""
    await trio.sleep(0.1)
    return f"{ctx.upstream['draft']} ({ctx.inputs['language']})"
