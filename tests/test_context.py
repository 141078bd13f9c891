"""The context a run hands its actions is a `NodeCtx` in every way a user can tell.

The run builds a lighter subclass (`LiveCtx`, which reads its fields on demand); these
tests hold it to the public class's behaviour: fields, read-only, equality, repr,
copies, pickles and `attrs.evolve`.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import attrs
import pytest
import trio
from helpers import run_mock

from dagtrio import ActionRegistry, Coordinator, NodeCtx, NodeSpec


def _capture(specs: list[NodeSpec], *, app_data: Any = None) -> dict[tuple[str, int], Any]:
    """Run ``specs`` (actions ``ok`` and ``flaky``) and keep every attempt's context."""
    seen: dict[tuple[str, int], Any] = {}
    registry = ActionRegistry()

    @registry.action()
    async def ok(ctx: NodeCtx) -> Any:
        seen[ctx.node_id, ctx.attempt] = ctx
        return {"from": ctx.node_id, "got": dict(ctx.upstream)}

    @registry.action()
    async def flaky(ctx: NodeCtx) -> Any:
        seen[ctx.node_id, ctx.attempt] = ctx
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return ctx.attempt

    async def main() -> None:
        report = await Coordinator(registry, app_data=app_data).run(specs, dag_name="d", run_id="r")
        assert report.success, report

    run_mock(main)
    return seen


SPECS = [
    NodeSpec("ok", id="a", inputs={"x": 1}),
    NodeSpec("flaky", id="b", try_count=2),
    NodeSpec("ok", id="c", deps=("a", "b"), branch="main/side", inputs={"y": [1, 2]}),
]


def test_fields_are_those_of_the_attempt() -> None:
    seen = _capture(SPECS, app_data={"app": True})
    c = seen["c", 1]
    assert isinstance(c, NodeCtx)
    assert (c.dag_name, c.node_id, c.run_id, c.attempt, c.branch) == ("d", "c", "r", 1, "main/side")
    assert dict(c.inputs) == {"y": [1, 2]}
    assert dict(c.upstream) == {"a": {"from": "a", "got": {}}, "b": 2}
    assert c.upstream is c.upstream  # built once
    assert c.app_data == {"app": True}
    assert set(c.cache) >= {"a", "b", "c"}
    assert c.ref.node == "c"
    # A context kept past a retry still tells its own attempt.
    assert (seen["b", 1].attempt, seen["b", 2].attempt) == (1, 2)


def test_it_behaves_as_the_plain_nodectx_with_the_same_fields() -> None:
    ctx = _capture(SPECS)["c", 1]
    plain = NodeCtx(*(getattr(ctx, field.name) for field in attrs.fields(NodeCtx)))
    assert type(plain) is NodeCtx
    assert ctx == plain and plain == ctx
    assert (ctx != plain) is False
    assert ctx != attrs.evolve(plain, attempt=2)
    assert repr(ctx) == repr(plain) and repr(ctx).startswith("NodeCtx(")
    assert attrs.asdict(ctx) == attrs.asdict(plain)
    twin = copy.copy(ctx)
    assert type(twin) is NodeCtx and twin == plain
    evolved = attrs.evolve(ctx, attempt=5)
    assert type(evolved) is NodeCtx and evolved.attempt == 5 and evolved.node_id == "c"
    # The live cache (a read-only proxy) and the run's progress callback do not pickle,
    # for the plain class either; without them the context pickles as the plain class.
    portable = {"cache": {}, "progress": None}
    back = pickle.loads(pickle.dumps(attrs.evolve(ctx, **portable)))
    assert back == attrs.evolve(plain, **portable)


@pytest.mark.parametrize("field", [field.name for field in attrs.fields(NodeCtx)] + ["other"])
def test_it_is_read_only(field: str) -> None:
    ctx = _capture(SPECS[:1])["a", 1]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(ctx, field, None)


def test_emit_from_the_context_reaches_the_run() -> None:
    registry = ActionRegistry()

    @registry.action()
    async def talk(ctx: NodeCtx) -> None:
        await ctx.emit({"step": ctx.attempt})

    async def main() -> list[Any]:
        async with Coordinator(registry).open_run([NodeSpec("talk", id="t")]) as run:
            return [e async for e in run.events() if type(e).__name__ == "NodeProgress"]

    progress = trio.run(main)
    assert [(e.node.node, e.attempt, e.payload) for e in progress] == [("t", 1, {"step": 1})]
