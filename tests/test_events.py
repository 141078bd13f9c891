"""The hot path's fast event constructors build exactly what the classes build."""

from __future__ import annotations

import pickle

import attrs

import dagtrio
from dagtrio import NodeAdded, NodeCompleted, NodeOutput, NodeRef, NodeSpec, NodeStarted
from dagtrio._model.events import node_added, node_completed, node_output, node_started


def test_each_fast_constructor_equals_the_class_in_every_respect() -> None:
    ref = NodeRef("dag", "n1")
    output = NodeOutput({"x": 1}, True, None)
    pairs = [
        (node_started(ref, 3), NodeStarted(ref, 3)),
        (node_completed(ref, output), NodeCompleted(ref, output)),
        (
            node_added(ref, NodeSpec("a", id="n1"), "main"),
            NodeAdded(ref, NodeSpec("a", id="n1"), "main"),
        ),
        (node_output(7, True, {"m": 1}), NodeOutput(7, True, {"m": 1})),
    ]
    for fast, built in pairs:
        assert type(fast) is type(built)
        assert fast == built
        assert repr(fast) == repr(built)
        assert attrs.asdict(fast) == attrs.asdict(built)
        assert pickle.loads(pickle.dumps(fast)) == built
        assert dagtrio.converter.unstructure(fast) == dagtrio.converter.unstructure(built)
        assert attrs.evolve(fast) == built
    assert hash(pairs[0][0]) == hash(pairs[0][1])
