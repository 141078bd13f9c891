"""The graph generators of dagtrio.bench: sizes, acyclicity, shapes, seeds, growth."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagtrio import ActionRegistry, Coordinator, NodeCtx, NodeSpec, NodeStatus
from dagtrio.bench import generators as gen
from dagtrio.bench.generators import (
    chain,
    check_graph,
    edge_count,
    fan,
    growth,
    layered,
    layered_graph,
    make_graph,
    random_dag,
    random_graph,
)


def assert_topological(specs: list[NodeSpec]) -> None:
    """Every dep names a node listed earlier, ids are unique: acyclic by construction."""
    seen: set[str] = set()
    for spec in specs:
        assert spec.id is not None
        assert spec.id not in seen, f"duplicate id {spec.id}"
        for dep in spec.deps:
            assert dep in seen, f"{spec.id} depends on {dep}, which does not come before it"
        seen.add(spec.id)


@pytest.mark.parametrize("n", [1, 2, 3, 10, 257])
def test_every_shape_has_the_requested_size_and_is_acyclic(n: int) -> None:
    for specs in (
        chain(n),
        fan(n),
        layered(n, width=7, seed=1),
        random_dag(n, density=0.2, seed=1),
        growth(n, k=3, width=7, seed=1).final_specs(),
    ):
        assert len(specs) == n
        assert_topological(specs)
    for shape in gen.SHAPES:
        graph = make_graph(shape, n, width=7, seed=1)
        assert len(graph) == n
        check_graph(graph)


def test_specs_carry_the_action_name_and_index_ids() -> None:
    specs = layered(20, width=5, seed=3, action="work")
    assert {spec.action for spec in specs} == {"work"}
    assert [spec.id for spec in specs] == [f"n{i}" for i in range(20)]
    assert {spec.action for spec in growth(20, action="work").initial} == {"work"}


def test_chain_links_each_node_to_the_one_before() -> None:
    assert [spec.deps for spec in chain(4)] == [(), ("n0",), ("n1",), ("n2",)]


def test_fan_has_one_root_a_middle_and_one_sink() -> None:
    specs = fan(6)
    assert specs[0].deps == ()
    assert all(spec.deps == ("n0",) for spec in specs[1:5])
    assert specs[5].deps == ("n1", "n2", "n3", "n4")
    assert [spec.deps for spec in fan(2)] == [(), ("n0",)]


@given(
    n=st.integers(1, 300),
    width=st.integers(1, 20),
    seed=st.integers(0, 2**32),
)
def test_layered_deps_are_one_to_three_nodes_of_the_previous_layer(
    n: int, width: int, seed: int
) -> None:
    graph = layered_graph(n, width=width, seed=seed)
    assert len(graph) == n
    for index, deps in enumerate(graph):
        layer = index // width
        if layer == 0:
            assert deps == ()
            continue
        assert 1 <= len(deps) <= min(3, width)
        assert len(set(deps)) == len(deps)
        assert all(dep // width == layer - 1 for dep in deps)


def test_same_seed_reproduces_and_different_seeds_differ() -> None:
    assert layered(500, width=10, seed=7) == layered(500, width=10, seed=7)
    assert layered(500, width=10, seed=7) != layered(500, width=10, seed=8)
    assert random_dag(300, density=0.05, seed=7) == random_dag(300, density=0.05, seed=7)
    assert random_dag(300, density=0.05, seed=7) != random_dag(300, density=0.05, seed=8)
    a, b = growth(500, width=10, seed=7), growth(500, width=10, seed=7)
    assert a.final_graph == b.final_graph and a.children == b.children
    assert growth(500, width=10, seed=8).children != a.children


def test_random_density_sets_the_edge_count() -> None:
    n = 400
    pairs = n * (n - 1) // 2
    edges = edge_count(random_graph(n, density=0.1, seed=0))
    # The count is binomial(pairs, 0.1); 6 standard deviations cannot flake for a fixed seed.
    assert abs(edges - 0.1 * pairs) < 6 * (pairs * 0.1 * 0.9) ** 0.5
    assert edge_count(random_graph(30, density=1.0)) == 30 * 29 // 2
    # The default keeps about two deps per node on average, whatever the size.
    assert 1.5 < edge_count(random_graph(5000)) / 5000 < 2.5


def test_growth_has_the_requested_final_size_and_k_children_per_marked_node() -> None:
    for n, k in [(1, 4), (5, 4), (6, 1), (100, 4), (1001, 7)]:
        plan = growth(n, k=k, width=10, seed=2)
        assert plan.final_size == n
        assert len(plan.initial) + k * len(plan.children) == n
        initial_ids = {spec.id for spec in plan.initial}
        assert set(plan.children) <= initial_ids
        for children in plan.children.values():
            assert len(children) == k
            assert not set(children) & initial_ids
    plan = growth(3000, k=4, marked=0.5, seed=2)
    assert len(plan.children) == pytest.approx(len(plan.initial) / 2, abs=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: chain(0), "n must be an int >= 1"),
        (lambda: layered(5, width=0), "width must be an int >= 1"),
        (lambda: random_dag(5, density=0), "density must be a number in"),
        (lambda: random_dag(5, density=1.5), "density must be a number in"),
        (lambda: growth(5, k=0), "k must be an int >= 1"),
        (lambda: growth(5, marked=0), "marked must be a fraction"),
        (lambda: make_graph("star", 5), "unknown shape 'star'"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_check_graph_refuses_a_forward_or_self_dep() -> None:
    with pytest.raises(ValueError, match="node 1 depends on 1"):
        check_graph([(), (1,)])


async def test_the_growth_hook_grows_the_run_to_the_final_graph() -> None:
    plan = growth(60, k=3, width=6, seed=4, action="noop")
    registry = ActionRegistry()

    @registry.action()
    async def noop(ctx: NodeCtx) -> None:
        return None

    report = await Coordinator(registry, hooks=[plan.hook()], max_parallel=4).run(plan.initial)
    assert report.success
    assert len(report.nodes) == plan.final_size == 60
    expected = {spec.id: spec.deps for spec in plan.final_specs()}
    assert {node: record.deps for node, record in report.nodes.items()} == expected
    assert all(record.status is NodeStatus.SUCCEEDED for record in report.nodes.values())
