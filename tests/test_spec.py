"""The data model validates at the boundary, naming the node and the problem."""

from __future__ import annotations

import math

import pytest

from dagtrio import InvalidSpecError, NodeCtx, NodeOutput, NodeRef, NodeSpec, NodeStatus


def test_spec_defaults_and_deps_from_any_iterable() -> None:
    spec = NodeSpec("fetch", id="a", deps=(d for d in ["x", "y", "x"]))
    assert spec.deps == ("x", "y")  # kept once, in order
    assert spec.inputs == {} and spec.try_count == 1 and spec.timeout is None
    assert spec.branch is None and spec.retry_delay == 0.0


def test_spec_copies_inputs_so_later_changes_do_not_leak_in() -> None:
    inputs = {"q": 1}
    spec = NodeSpec("fetch", id="a", inputs=inputs)
    inputs["q"] = 2
    assert spec.inputs == {"q": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"try_count": 0}, "try_count must be >= 1"),
        ({"try_count": -3}, "try_count must be >= 1"),
        ({"try_count": 1.5}, "try_count must be an int"),
        ({"try_count": True}, "try_count must be an int"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"timeout": -1}, "timeout must be > 0"),
        ({"timeout": math.nan}, "timeout must be > 0"),
        ({"timeout": "5"}, "timeout must be a number"),
        ({"retry_delay": -0.1}, "retry_delay must be >= 0"),
        ({"retry_delay": math.inf}, "retry_delay must be finite"),
        ({"inputs": [1, 2]}, "inputs must be a mapping, got list"),
        ({"inputs": {1: "x"}}, "input names must be strings"),
        ({"deps": ["ok", ""]}, "deps must be non-empty strings"),
        ({"deps": [3]}, "deps must be non-empty strings"),
        ({"branch": ""}, "is not a path"),
        ({"branch": "main//x"}, "is not a path"),
        ({"branch": "/main"}, "is not a path"),
        ({"branch": 7}, "branch must be a string"),
    ],
)
def test_bad_spec_fields_raise_naming_the_node(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message) as info:
        NodeSpec("fetch", id="the-node", **kwargs)
    assert "node 'the-node'" in str(info.value)
    assert info.value.node == "the-node"


@pytest.mark.parametrize("bad_id", ["", 5])
def test_bad_ids_and_actions_are_refused(bad_id: object) -> None:
    with pytest.raises(InvalidSpecError, match="id must be a non-empty string"):
        NodeSpec("fetch", id=bad_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError, match="action must be a non-empty string"):
        NodeSpec("", id="a")


def test_invalid_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="try_count"):
        NodeSpec("fetch", try_count=0)


def test_node_output_constructors() -> None:
    ok = NodeOutput.ok({"rows": 3}, source="cache")
    assert ok.success and ok.outputs == {"rows": 3} and ok.metadata == {"source": "cache"}
    assert ok.error is None
    failed = NodeOutput.failed("quota exceeded", retry_after=4)
    assert not failed.success and failed.error == "quota exceeded"
    assert failed.metadata == {"error": "quota exceeded", "retry_after": 4}
    assert NodeOutput(success=False).error == "action reported failure"


def test_status_finality() -> None:
    final = {s for s in NodeStatus if s.is_final}
    assert final == {
        NodeStatus.SUCCEEDED,
        NodeStatus.FAILED,
        NodeStatus.CANCELLED,
        NodeStatus.SKIPPED,
    }
    assert NodeStatus.RUNNING == "running"


def test_node_ref_and_ctx() -> None:
    assert str(NodeRef("dag", "a")) == "dag:a"
    ctx = NodeCtx("dag", "a", "run", {}, {}, 1, {})
    assert ctx.ref == NodeRef("dag", "a") and ctx.branch == "main"
    with pytest.raises(AttributeError):
        ctx.attempt = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("estimate", "message"),
    [
        (-1, "estimate must be >= 0"),
        (float("nan"), "estimate must be >= 0"),
        (float("inf"), "estimate must be finite"),
        ("3", "estimate must be a number, got str"),
        (True, "estimate must be a number, got bool"),
    ],
)
def test_estimate_is_a_finite_number_of_seconds(estimate: object, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        NodeSpec("a", id="x", estimate=estimate)  # type: ignore[arg-type]
    assert NodeSpec("a", estimate=2).estimate == 2.0
