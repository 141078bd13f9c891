"""A property test of a planner hook, as a user writes one with dagtrio's pytest plugin.

Run it with ``pytest examples/test_my_planner.py``: the plugin comes with dagtrio
(the ``run_graph`` fixture), hypothesis generates the graphs, and every run happens in
virtual time, so 100 examples of runs lasting simulated minutes take a second or two.
"""

import trio
from hypothesis import given, settings

from dagtrio import (
    ActionRegistry,
    AddNode,
    ExecutionEvent,
    HookContext,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
)
from dagtrio.testing import RunGraph, dags

registry = ActionRegistry()


@registry.action()
async def fetch(ctx: NodeCtx) -> dict[str, int]:
    await trio.sleep(30)  # half a minute of simulated work
    return {"pages": 2 if ctx.node_id.count("/") < 2 else 0}


async def planner(ctx: HookContext, event: ExecutionEvent) -> list[AddNode] | None:
    """Follows every page a fetch found: the graph grows as answers arrive."""
    if isinstance(event, NodeCompleted):
        parent = event.node.node
        pages = event.outcome.outputs["pages"]
        return [AddNode(NodeSpec("fetch", id=f"{parent}/{i}", deps=[parent])) for i in range(pages)]
    return None


@settings(max_examples=100, deadline=None)
@given(specs=dags(action="fetch", max_nodes=6))
def test_the_planner_follows_every_page_and_stops(
    run_graph: RunGraph, specs: list[NodeSpec]
) -> None:
    run = run_graph(registry, specs, hooks=[planner], max_parallel=4)
    # Each seed node grows a tree of 1 + 2 + 4 fetches, and the run ends.
    assert run.report.success
    assert len(run.report.nodes) == 7 * len(specs)
