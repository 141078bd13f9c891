"""``dagtrio graph``: checks, the shape of a graph (levels, critical path), exports, Gantt."""

from __future__ import annotations

import itertools
import json
import os
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio._model.graph import shape
from dagtrio.cli import main

ACTIONS = """
from dagtrio import ActionRegistry

registry = ActionRegistry()


@registry.action()
async def step(ctx):
    return 1
"""

_names = itertools.count()

DIAMOND = """
dag: diamond
actions: {flow}
nodes:
  - {{id: fetch, action: step, estimate: 1}}
  - {{id: slow, action: step, deps: [fetch], estimate: 5}}
  - {{id: quick, action: step, deps: [fetch], estimate: 0.5}}
  - {{id: "join \\"it\\"", action: step, deps: [slow, quick], estimate: 1}}
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"graphcli_actions_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(ACTIONS)
    monkeypatch.chdir(tmp_path)
    return name


def diamond(tmp_path: Path, flow: str) -> Path:
    path = tmp_path / "diamond.yaml"
    path.write_text(DIAMOND.format(flow=flow))
    return path


def test_a_valid_file_shows_its_levels_and_critical_path(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", str(diamond(tmp_path, flow))]) == 0
    out = capsys.readouterr().out
    assert "valid: 4 nodes, 4 deps, 3 levels (widest: 2 at level 1)" in out
    assert 'critical path: 7.00 s (by estimates), 3 nodes: fetch → slow → join "it"' in out


def test_critical_path_lists_each_node_with_its_time(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["graph", str(diamond(tmp_path, flow)), "--critical-path"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert [row.split("│")[1].strip() for row in rows[-3:]] == ["fetch", "slow", 'join "it"']


def test_without_estimates_the_path_is_counted_in_nodes(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chain.json"
    nodes = [
        {"id": f"n{i}", "action": "step", "deps": [f"n{i - 1}"] if i else []} for i in range(5)
    ]
    path.write_text(json.dumps({"actions": flow, "nodes": nodes}))
    assert main(["graph", str(path)]) == 0
    assert "critical path: 5 nodes (counted in nodes" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["dot", "graphml", "mermaid", "json"])
def test_every_format_writes_the_graph_alone_to_stdout(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    assert main(["graph", str(diamond(tmp_path, flow)), "--format", fmt]) == 0
    captured = capsys.readouterr()
    assert "critical path" in captured.err  # the summary moved out of the way
    text = captured.out
    if fmt == "json":
        data = json.loads(text)
        assert data["critical_path"] == ["fetch", "slow", 'join "it"']
        assert data["levels"] == [1, 2, 1]
        assert {node["id"]: node["deps"] for node in data["nodes"]}['join "it"'] == [
            "slow",
            "quick",
        ]
    elif fmt == "graphml":
        root = ElementTree.fromstring(text)
        ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
        assert len(root.findall(".//g:node", ns)) == 4
        assert len(root.findall(".//g:edge", ns)) == 4
    elif fmt == "dot":
        assert text.lstrip().startswith("/*") or text.lstrip().startswith("digraph")
        assert text.count("->") == 4
        assert 'label="join \\"it\\""' in text
    else:
        assert text.startswith("flowchart TD\n")
        assert text.count(" --> ") == 4
        assert "#quot;" in text  # a quote in an id cannot end the label


def test_output_writes_to_a_file(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.json"
    path = diamond(tmp_path, flow)
    assert main(["graph", str(path), "--format", "json", "-o", str(target)]) == 0
    assert json.loads(target.read_text())["dag"] == "diamond"
    assert "critical path" in capsys.readouterr().out


def test_a_cycle_is_shown_as_its_path(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        actions: {flow}
        nodes:
          - {{id: a, action: step, deps: [c]}}
          - {{id: b, action: step, deps: [a]}}
          - {{id: c, action: step, deps: [b]}}
          - {{id: d, action: step}}
          - {{id: e, action: step, deps: [e]}}
        """)
    )
    assert main(["graph", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cycle.yaml:3: nodes[0].deps: the deps form a cycle: a → b → c → a" in err
    assert "nodes[4].deps: the deps form a cycle: e → e" in err  # every knot, not the first


def test_unknown_actions_are_found_when_the_module_imports(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        f"actions: {flow}\nnodes:\n  - {{id: a, action: stp}}\n  - {{id: b, action: stp}}\n"
    )
    assert main(["graph", str(path)]) == 2
    err = capsys.readouterr().err
    assert "f.yaml:3: nodes[0].action: no action 'stp'" in err
    assert "f.yaml:4: nodes[1].action: no action 'stp'" in err


def test_a_module_that_does_not_import_here_is_a_note_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "f.yaml"
    path.write_text("actions: graphcli_not_here\nnodes:\n  - {id: a, action: step}\n")
    assert main(["graph", str(path)]) == 0
    captured = capsys.readouterr()
    assert "note: actions not checked" in captured.err
    assert "valid: 1 node" in captured.out


def test_a_journaled_run_gives_durations_and_a_gantt_chart(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "runs.db"
    path = diamond(tmp_path, flow)
    assert main(["run", str(path), "--journal", str(journal), "--run-id", "g1", "--quiet"]) == 0
    capsys.readouterr()
    chart = tmp_path / "run.html"
    assert main(["graph", str(journal), "--gantt", str(chart), "--format", "json", "-o", "-"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert {node["status"] for node in data["nodes"]} == {"succeeded"}
    assert all(node["duration"] >= 0 for node in data["nodes"])
    assert "by each node's duration" in captured.err
    page = chart.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "<script" not in page  # self-contained, nothing to run
    assert page.count("<rect") == 4
    assert "join &quot;it&quot;" in page
    png = tmp_path / "run.png"
    assert main(["graph", str(journal), "g1", "--gantt", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--gantt", "x.html"], "--gantt charts a run that happened"),
        (["some-run"], "RUN_ID chooses a run of a journal"),
    ],
)
def test_journal_options_on_a_file_are_refused(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert main(["graph", str(diamond(tmp_path, flow)), *argv]) == 2
    assert expected in capsys.readouterr().err


def test_a_gantt_file_of_an_unknown_kind_is_refused(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "runs.db"
    assert main(["run", str(diamond(tmp_path, flow)), "--journal", str(journal), "--quiet"]) == 0
    assert main(["graph", str(journal), "--gantt", str(tmp_path / "x.txt")]) == 2
    assert "write .png, .svg or .pdf" in capsys.readouterr().err


# ------------------------------------------------------------------ the analysis, as properties


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], list[float]]:
    n = draw(st.integers(1, 12))
    edges = sorted(
        {(u, v) for v in range(1, n) for u in draw(st.lists(st.integers(0, v - 1), max_size=3))}
    )
    weights = draw(st.lists(st.integers(0, 9).map(float), min_size=n, max_size=n))
    return n, edges, weights


def _paths(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Every path that starts at a root and ends at a sink (brute force)."""
    succ: dict[int, list[int]] = {v: [] for v in range(n)}
    has_dep = set()
    for u, v in edges:
        succ[u].append(v)
        has_dep.add(v)
    found: list[list[int]] = []

    def walk(path: list[int]) -> None:
        if not succ[path[-1]]:
            found.append(path)
        for w in succ[path[-1]]:
            walk([*path, w])

    for root in range(n):
        if root not in has_dep:
            walk([root])
    return found


@settings(max_examples=200, deadline=None)
@given(dags())
def test_the_critical_path_is_the_heaviest_chain(
    graph: tuple[int, list[tuple[int, int]], list[float]],
) -> None:
    n, edges, weights = graph
    found = shape(n, edges, weights)
    paths = _paths(n, edges)
    heaviest = max(sum(weights[v] for v in path) for path in paths)
    assert found.critical_length == heaviest
    # It is a real chain of deps, and it weighs what it says.
    assert all((u, v) in set(edges) for u, v in itertools.pairwise(found.critical_path))
    assert sum(weights[v] for v in found.critical_path) == heaviest
    # Levels: the longest chain above each node; widths count them.
    for v in range(n):
        longest = max((len(p[: p.index(v)]) for p in paths if v in p), default=0)
        assert found.levels[v] == longest
    assert sum(found.widths) == n
    assert sorted(found.order) == list(range(n))
