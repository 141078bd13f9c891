"""``dagtrio bench --shape workflow``: WfFormat files read, makespans in virtual time.

The makespans are judged against facts every schedule obeys: none beats the lower
bound (max of critical path and work ÷ slots), and a scheduler that never leaves a
slot idle while a task is ready finishes within Graham's bound (work ÷ slots +
critical path), in either order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagtrio.bench import plot
from dagtrio.bench.workflow import (
    TIE_BREAK,
    WorkflowError,
    load_workflow,
    makespan,
    minimal_makespan,
    parse_workflow,
)
from dagtrio.cli import main


def wfformat(tasks: list[tuple[str, list[str], float]]) -> dict[str, Any]:
    """A WfFormat 1.5 document: (id, parents, runtime) per task."""
    return {
        "name": "test",
        "schemaVersion": "1.5",
        "workflow": {
            "specification": {
                "tasks": [{"name": i, "id": i, "parents": p, "children": []} for i, p, _ in tasks]
            },
            "execution": {
                "makespanInSeconds": 0,
                "tasks": [{"id": i, "runtimeInSeconds": r} for i, _, r in tasks],
            },
        },
    }


# c then d is the long path; FIFO starts x1 and x2 first and pays for it.
TRAP = [("x1", [], 1.0), ("x2", [], 1.0), ("c", [], 3.0), ("d", ["c"], 3.0)]


def near(value: float, expected: float, tasks: int) -> bool:
    return abs(value - expected) <= tasks * tasks * TIE_BREAK


def test_a_wfformat_document_is_read_in_a_topological_order_near_the_files() -> None:
    doc = wfformat([("b", ["a"], 2.0), ("a", [], 1.0), ("c", [], 0), ("d", ["b", "a"], 4)])
    workflow = parse_workflow(doc, name="w")
    assert workflow.ids == ("a", "b", "c", "d")
    assert workflow.deps == ((), (0,), (), (0, 1))
    assert workflow.runtimes == (1.0, 2.0, 0.0, 4.0)
    assert workflow.critical_path == 7.0
    assert workflow.work == 7.0
    assert workflow.lower_bound(1) == 7.0
    specs = workflow.specs()
    assert [s.id for s in specs] == ["a", "b", "c", "d"]
    assert specs[3].deps == ("a", "b")
    assert specs[3].estimate == 4.0


def test_the_older_wfformat_with_tasks_under_workflow_is_read() -> None:
    doc = {
        "workflow": {
            "tasks": [
                {"name": "a", "parents": [], "runtime": 2},
                {"name": "b", "parents": ["a"], "runtimeInSeconds": 3.5},
            ]
        }
    }
    workflow = parse_workflow(doc)
    assert workflow.ids == ("a", "b")
    assert workflow.runtimes == (2.0, 3.5)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "no 'workflow' object"),
        ({"workflow": {"specification": {"tasks": []}}}, "workflow.execution is missing"),
        (wfformat([]), "no tasks"),
        (wfformat([("a", ["z"], 1)]), "parent 'z' is not a task"),
        (wfformat([("a", ["b"], 1), ("b", ["a"], 1)]), "cycle"),
        (wfformat([("a", [], 1), ("a", [], 1)]), "'a' appears twice"),
        (wfformat([("a", [], -1)]), "'a': runtime must be finite"),
        (wfformat([("a", [], float("inf"))]), "'a': runtime must be finite"),
        (wfformat([("a", [], True)]), "'a': no runtimeInSeconds"),
        ({"workflow": {"tasks": [{"id": "a", "parents": "b", "runtime": 1}]}}, "parents must"),
        ({"workflow": {"tasks": [{"parents": [], "runtime": 1}]}}, "has no 'id'"),
        ({"workflow": {"tasks": 3}}, "workflow.tasks must be a list"),
    ],
)
def test_a_bad_workflow_is_refused_naming_what_is_wrong(doc: Any, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        parse_workflow(doc)


def test_a_file_that_cannot_be_read_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match=r"missing\.json: cannot read it"):
        load_workflow(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(WorkflowError, match=r"bad\.json: not JSON"):
        load_workflow(tmp_path / "bad.json")
    (tmp_path / "cyc.json").write_text(json.dumps(wfformat([("a", ["a"], 1)])))
    with pytest.raises(WorkflowError, match=r"cyc\.json: the tasks have a cycle"):
        load_workflow(tmp_path / "cyc.json")


def test_critical_path_order_starts_the_long_path_first_and_fifo_does_not() -> None:
    workflow = parse_workflow(wfformat(TRAP))
    assert workflow.lower_bound(2) == 6.0
    assert near(makespan(workflow, 2, "critical_path"), 6.0, 4)
    assert near(makespan(workflow, 2, "fifo"), 7.0, 4)
    assert near(minimal_makespan(workflow, 2), 7.0, 4)


def test_equal_runtimes_give_the_same_makespan_on_every_run() -> None:
    # Twelve equal tasks feeding three: without the tie break, Trio's own order of
    # tasks due at the same instant would decide which of the three start first.
    tasks = [(f"t{i}", [], 5.0) for i in range(12)]
    tasks += [(f"u{j}", [f"t{j}", f"t{11 - j}"], 1.0 + j) for j in range(3)]
    workflow = parse_workflow(wfformat(tasks))
    spans = {makespan(workflow, 4, "fifo") for _ in range(5)}
    assert len(spans) == 1


@st.composite
def workflows(draw: st.DrawFn) -> list[tuple[str, list[str], float]]:
    n = draw(st.integers(1, 14))
    tasks = []
    for i in range(n):
        parents = draw(st.lists(st.integers(0, i - 1), max_size=3)) if i else []
        runtime = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 7.0]))
        tasks.append((f"t{i}", sorted({f"t{p}" for p in parents}), runtime))
    return draw(st.permutations(tasks))


@settings(max_examples=60, deadline=None)
@given(tasks=workflows(), slots=st.integers(1, 4), order=st.sampled_from(["fifo", "critical_path"]))
def test_every_makespan_lies_between_the_lower_bound_and_grahams(
    tasks: list[tuple[str, list[str], float]], slots: int, order: Any
) -> None:
    workflow = parse_workflow(wfformat(tasks))
    span = makespan(workflow, slots, order)
    slack = len(tasks) * len(tasks) * TIE_BREAK
    assert workflow.lower_bound(slots) - slack <= span
    assert span <= workflow.work / slots + workflow.critical_path + slack
    if slots == 1:
        assert near(span, workflow.work, len(tasks))


def test_the_cli_prints_writes_json_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trap.json"
    path.write_text(json.dumps(wfformat(TRAP)))
    out = tmp_path / "out.json"
    args = ["--workflow", str(path), "--max-parallel", "2,1", "--json", str(out)]
    if plot.available():
        args += ["--plot", str(tmp_path / "orders.png")]
    assert main(["bench", "--shape", "workflow", *args]) == 0
    printed = capsys.readouterr().out
    assert "trap: 4 tasks, critical path 6.0 s, work 8.0 s" in printed
    data = json.loads(out.read_text())
    assert data["schema"] == "dagtrio-bench-workflow/1"
    [result] = data["workflows"]
    assert [row["slots"] for row in result["slots"]] == [1, 2]
    two = result["slots"][1]
    assert two["lower_bound_s"] == 6.0
    assert round(two["makespan_s"]["fifo"], 6) == 7.0
    assert round(two["makespan_s"]["critical_path"], 6) == 6.0
    assert round(two["makespan_s"]["trio-minimal"], 6) == 7.0
    if plot.available():
        assert (tmp_path / "orders.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shape", "workflow"], "needs one --workflow FILE.json"),
        (["--workflow", "x.json"], "--workflow needs --shape workflow"),
        (["--max-parallel", "2,3"], "several --max-parallel values are only for --shape workflow"),
        (["--shape", "workflow", "--workflow", "x.json", "--compare"], "--compare does not"),
        (["--shape", "workflow", "--workflow", "x.json", "--hooks", "1"], "--hooks"),
        (["--shape", "workflow", "--workflow", "nope.json"], "nope.json: cannot read it"),
    ],
)
def test_the_cli_refuses_what_does_not_apply(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = [str(tmp_path / a) if a == "nope.json" else a for a in args]
    assert main(["bench", *args]) == 2
    assert message in capsys.readouterr().err
