"""``dagtrio run FILE``: a DAG file run from the shell, its exit codes, journal and Ctrl-C."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dagtrio import NodeStatus, RunReport, SqliteJournal
from dagtrio.cli import main

ACTIONS = """
import os
from pathlib import Path
import trio
from dagtrio import ActionRegistry, EventHook, NodeCompleted, AddNode, NodeSpec

registry = ActionRegistry()


@registry.action()
async def step(ctx):
    if ctx.node_id in os.environ.get("BROKEN", "").split(","):
        raise RuntimeError(f"{ctx.node_id} is broken")
    return 1 + sum(v for v in ctx.upstream.values() if isinstance(v, int))


@registry.action()
async def block(ctx):
    # Blocks the first time (until cancelled or killed); returns once it has started
    # before, as the resumed run's attempt does.
    flag = Path(ctx.inputs["flag"])
    if flag.exists():
        return 0
    flag.write_text("started")
    await trio.sleep_forever()


class Grow(EventHook):
    async def handle(self, ctx, event):
        if isinstance(event, NodeCompleted) and event.node.node == "a":
            return [AddNode(NodeSpec("step", id="grown", deps=["a"]))]
        return None
"""

_names = itertools.count()


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh actions module beside the DAG files (its name is new in each test, as
    sys.modules keeps what a test imported)."""
    name = f"runcli_actions_{os.getpid()}_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(ACTIONS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BROKEN", raising=False)
    return name


def dag_file(tmp_path: Path, flow: str, body: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"dag: demo\nactions: {flow}\n" + textwrap.dedent(body))
    return path


CHAIN = """
nodes:
  - {id: a, action: step}
  - {id: b, action: step, deps: [a]}
  - {id: c, action: step, deps: [b]}
"""


def test_a_file_runs_and_prints_the_node_table(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dag_file(tmp_path, flow, CHAIN)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    for node in ("a", "b", "c"):
        assert f"│ {node} " in out
    assert "3 nodes: 3 succeeded" in out


def test_json_prints_the_report_alone_on_stdout(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dag_file(tmp_path, flow, CHAIN)
    assert main(["run", str(path), "--json", "--run-id", "r1"]) == 0
    report = RunReport.from_json(capsys.readouterr().out)
    assert report.run_id == "r1"
    assert report.dag_name == "demo"
    assert report.outputs() == {"a": 1, "b": 2, "c": 3}


def test_quiet_prints_nothing_and_the_status_says(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dag_file(tmp_path, flow, CHAIN)
    monkeypatch.setenv("BROKEN", "b")
    assert main(["run", str(path), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""


def test_hooks_from_the_file_grow_the_run(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dag_file(
        tmp_path, flow, f"hooks: ['{flow}:Grow']\nnodes:\n  - {{id: a, action: step}}\n"
    )
    assert main(["run", str(path), "--json"]) == 0
    report = RunReport.from_json(capsys.readouterr().out)
    assert report.outputs() == {"a": 1, "grown": 2}


def test_options_and_max_parallel_reach_the_coordinator(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dag_file(tmp_path, flow, "options: {max_parallel: 3, on_failure: fail_fast}\n" + CHAIN)
    journal = tmp_path / "runs.db"
    assert main(["run", str(path), "--journal", str(journal), "--max-parallel", "2"]) == 0
    reader = SqliteJournal(journal, read_only=True)
    try:
        (info,) = reader.runs()
        options = reader.stored_run(info.run_id).options
    finally:
        reader.close()
    assert options["max_parallel"] == 2
    assert options["on_failure"] == "fail_fast"


def test_order_and_limits_from_the_file_reach_the_coordinator(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        "options: {order: critical_path, limits: {llm: 1}}\n"
        "nodes:\n"
        "  - {id: a, action: step, uses: {llm: 1}, priority: 2}\n"
        "  - {id: b, action: step, deps: [a], uses: {llm: 1}}\n"
    )
    path = dag_file(tmp_path, flow, body)
    journal = tmp_path / "runs.db"
    assert main(["run", str(path), "--journal", str(journal)]) == 0
    reader = SqliteJournal(journal, read_only=True)
    try:
        (info,) = reader.runs()
        options = reader.stored_run(info.run_id).options
    finally:
        reader.close()
    assert options["order"] == "critical_path" and options["limits"] == {"llm": 1}
    # A use over the limit is bad input (exit 2), named in one line.
    over = dag_file(tmp_path, flow, body.replace("uses: {llm: 1}}", "uses: {llm: 2}}"), "over.yaml")
    assert main(["run", str(over)]) == 2
    assert "uses 2 of 'llm', more than its limit of 1" in capsys.readouterr().err


def test_a_failed_run_exits_1_and_says_how_to_run_the_failures_again(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dag_file(tmp_path, flow, CHAIN)
    journal = tmp_path / "runs.db"
    monkeypatch.setenv("BROKEN", "b")
    assert main(["run", str(path), "--journal", str(journal), "--run-id", "n1"]) == 1
    err = capsys.readouterr().err
    again = f"dagtrio run {path} --journal {journal} --run-id n1 --failed"
    assert again in err
    # The same run id without --failed would run nothing: it says so, and runs nothing.
    monkeypatch.delenv("BROKEN")
    assert main(["run", str(path), "--journal", str(journal), "--run-id", "n1"]) == 2
    assert "has finished" in capsys.readouterr().err
    assert main(again.split()[1:]) == 0
    reader = SqliteJournal(journal, read_only=True)
    try:
        report = reader.report("n1")
    finally:
        reader.close()
    assert report.success
    assert report.nodes["a"].attempts == 1  # a succeeded the first time: not run again
    assert report.outputs() == {"a": 1, "b": 2, "c": 3}


def test_held_failures_leave_a_journaled_run_resumable_and_name_the_commands(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dag_file(tmp_path, flow, "options: {on_failure: hold}\n" + CHAIN)
    journal = tmp_path / "runs.db"
    monkeypatch.setenv("BROKEN", "b")
    assert main(["run", str(path), "--journal", str(journal), "--run-id", "h1"]) == 1
    err = capsys.readouterr().err
    assert "held (failed, on_failure='hold'): b" in err
    supply = f"dagtrio resume {journal} h1 --actions {path} --output b=JSON"
    assert supply in err
    # The person decides from the shell: b's result is supplied, c runs on it.
    assert main(["resume", str(journal), "h1", "--actions", str(path), "--output", "b=41"]) == 0
    reader = SqliteJournal(journal, read_only=True)
    try:
        report = reader.report("h1")
    finally:
        reader.close()
    assert report.success
    assert report.outputs()["c"] == 42


def test_held_failures_without_a_journal_end_the_run(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dag_file(tmp_path, flow, "options: {on_failure: hold}\n" + CHAIN)
    monkeypatch.setenv("BROKEN", "b")
    assert main(["run", str(path)]) == 1
    captured = capsys.readouterr()
    assert "with --journal it would stay resumable" in captured.err
    assert "cancelled" in captured.out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("nodes:\n  - {id: a, action: nope}\n", "flow.yaml:4: nodes[0].action: no action 'nope'"),
        ("nodes:\n  - {id: a, action: step, deps: b}\n", "flow.yaml:4: nodes[0].deps:"),
        ("hooks: ['{flow}:Missing']\nnodes:\n  - {{id: a, action: step}}\n", "has no 'Missing'"),
    ],
)
def test_bad_input_exits_2_with_the_line(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    path = dag_file(
        tmp_path, flow, body.replace("{flow}", flow).replace("{{", "{").replace("}}", "}")
    )
    assert main(["run", str(path)]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_an_actions_module_that_does_not_import_shows_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runcli_broken_module.py").write_text("import no_such_module_anywhere\n")
    path = tmp_path / "flow.yaml"
    path.write_text("actions: runcli_broken_module\nnodes:\n  - {id: a, action: step}\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "does not import: ModuleNotFoundError: No module named 'no_such_module_anywhere'" in err
    assert "flow.yaml:1: actions: actions 'runcli_broken_module'" in err  # with its line
    assert "Traceback" not in err


def test_failed_needs_a_journal_and_a_run_id(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dag_file(tmp_path, flow, CHAIN)
    assert main(["run", str(path), "--failed"]) == 2
    assert "--failed runs parts of a journaled run again" in capsys.readouterr().err


def test_the_file_is_found_from_another_directory(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The actions module sits beside the file: the file's folder is importable.
    path = dag_file(tmp_path, flow, CHAIN)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["run", str(path), "--quiet"]) == 0


def blocking_dag(tmp_path: Path, flow: str) -> tuple[Path, Path]:
    """a → wait → after, where wait blocks until cancelled the first time it runs; and
    the file that says it started."""
    flag = tmp_path / "started"
    path = dag_file(
        tmp_path,
        flow,
        f"""
        nodes:
          - {{id: a, action: step}}
          - {{id: wait, action: block, deps: [a], inputs: {{flag: '{flag}'}}}}
          - {{id: after, action: step, deps: [wait]}}
        """,
    )
    return path, flag


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"dagtrio run ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the blocking node never started")
        time.sleep(0.05)


def test_ctrl_c_once_shuts_down_and_twice_cancels(tmp_path: Path, flow: str) -> None:
    path, flag = blocking_dag(tmp_path, flow)
    journal = tmp_path / "runs.db"
    command = ["run", str(path), "--journal", str(journal), "--run-id", "c1", "--grace", "600"]
    process = subprocess.Popen(
        [sys.executable, "-m", "dagtrio", *command],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(flag, process)
        process.send_signal(signal.SIGINT)
        # The shutdown is in force once it says so; the blocking node has 600 s left.
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        first = process.stderr.readline()
        while "shutting down" not in first and time.monotonic() < deadline:
            first = process.stderr.readline()
        assert "shutting down, running nodes have 600s" in first
        assert process.poll() is None  # still waiting out the grace
        process.send_signal(signal.SIGINT)
        out, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "cancelling the running nodes" in rest
    assert "--run-id c1 --failed" in rest
    reader = SqliteJournal(journal, read_only=True)
    try:
        report = reader.report("c1")
    finally:
        reader.close()
    assert report.nodes["a"].status is NodeStatus.SUCCEEDED
    assert report.nodes["wait"].status is NodeStatus.CANCELLED
    assert report.nodes["after"].status is not NodeStatus.SUCCEEDED
    assert "│ wait " in out


def test_the_run_id_of_a_run_whose_process_died_resumes_it(
    tmp_path: Path, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path, flag = blocking_dag(tmp_path, flow)
    journal = tmp_path / "runs.db"
    command = ["run", str(path), "--journal", str(journal), "--run-id", "k1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "dagtrio", *command],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(flag, process)  # type: ignore[arg-type]
    finally:
        process.kill()  # the power cut: nothing is written after this
        process.wait()
    # The same command goes on with the run: a is not run again, wait now returns.
    assert main(command) == 0
    captured = capsys.readouterr()
    assert "resuming run k1" in captured.err
    reader = SqliteJournal(journal, read_only=True)
    try:
        report = reader.report("k1")
    finally:
        reader.close()
    assert report.success
    assert report.nodes["a"].attempts == 1
    assert report.outputs()["after"] == 1
