"""``dagtrio resume``: finish a journaled run, or run parts of it again, from the shell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from dagtrio import Coordinator, NodeSpec, RunReport, SqliteJournal
from dagtrio.cli import main

ACTIONS = """
import os
from dagtrio import ActionRegistry

registry = ActionRegistry()


@registry.action()
async def step(ctx):
    if ctx.node_id in os.environ.get("BROKEN", "").split(","):
        raise RuntimeError(f"{ctx.node_id} is broken")
    return 1 + sum(ctx.upstream.values())
"""

SPECS = [
    NodeSpec("step", id="a"),
    NodeSpec("step", id="b", deps=["a"]),
    NodeSpec("step", id="c", deps=["b"]),
]


@pytest.fixture
def failed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A journal whose run ``run-1`` failed at ``b``; its actions importable as ``flow``."""
    (tmp_path / "flow.py").write_text(ACTIONS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "flow", raising=False)
    monkeypatch.setenv("BROKEN", "b")
    import flow  # type: ignore[import-not-found]

    path = tmp_path / "runs.db"
    coordinator = Coordinator(flow.registry, max_parallel=3, journal=SqliteJournal(path))
    trio.run(lambda: coordinator.run(SPECS, run_id="run-1"))
    monkeypatch.delenv("BROKEN")
    return path


def test_resume_failed_runs_the_failure_again_and_shows_the_history(
    failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resume", str(failed_run), "run", "--actions", "flow", "--failed"]) == 0
    out = capsys.readouterr().out
    assert "verdict   succeeded" in out
    assert "re-run: what failed" in out
    assert "b    │ failed after 1 attempt" in out and "b    │ succeeded after 2 attempts" in out
    report = SqliteJournal(failed_run, read_only=True).report("run-1")
    assert report.success and report.nodes["c"].outputs == 3


def test_resume_output_supplies_a_node_and_json_prints_the_report(
    failed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["resume", str(failed_run), "run-1", "--actions", "flow:registry"]
    assert main([*args, "--output", 'b={"by": "hand"}', "--json"]) == 1  # c cannot add a dict
    report = RunReport.from_json(capsys.readouterr().out)
    assert report.nodes["b"].supplied and report.nodes["b"].outputs == {"by": "hand"}
    assert report.nodes["c"].status.value == "failed"
    assert main([*args, "--output", "b=10", "--json"]) == 0
    report = RunReport.from_json(capsys.readouterr().out)
    assert report.nodes["c"].outputs == 11


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--output", "b={x"], 2, "the value for 'b' is not JSON"),
        (["--output", "b"], 2, "expected NODE=JSON, got 'b'"),
        (["--output", "b=1", "--output", "b=2"], 2, "names the same node twice"),
        (["--from", "nope"], 2, "node 'nope': is not in run 'run-1'"),
        (["--output", "nope=1"], 2, "node 'nope': is not in run 'run-1'"),
    ],
)
def test_bad_arguments_exit_2_saying_what_is_wrong_and_change_nothing(
    failed_run: Path, capsys: pytest.CaptureFixture[str], extra: list[str], code: int, message: str
) -> None:
    before = SqliteJournal(failed_run, read_only=True).stored_run("run-1")
    assert main(["resume", str(failed_run), "run-1", "--actions", "flow", *extra]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    after = SqliteJournal(failed_run, read_only=True).stored_run("run-1")
    assert after.records == before.records and after.info == before.info


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ("no_such_module", "the module does not import: ModuleNotFoundError"),
        ("flow:nothing", "module flow has no 'nothing'"),
        ("flow:SPECS_", "module flow has no 'SPECS_'"),
        ("json", "module json has no ActionRegistry"),
        (":x", "no module named"),
    ],
)
def test_an_actions_module_that_cannot_be_used_is_named(
    failed_run: Path, capsys: pytest.CaptureFixture[str], actions: str, message: str
) -> None:
    assert main(["resume", str(failed_run), "run-1", "--actions", actions]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_journal_or_run_exits_1(
    failed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["resume", str(tmp_path / "none.db"), "r", "--actions", "flow"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["resume", str(failed_run), "zzz", "--actions", "flow"]) == 1
    assert "has no run 'zzz'" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_the_actions_module_raising_at_import_is_shown_without_a_traceback(
    failed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken_flow.py").write_text("raise RuntimeError('no config')\n")
    assert main(["resume", str(failed_run), "run-1", "--actions", "broken_flow"]) == 2
    err = capsys.readouterr().err
    assert "RuntimeError: no config" in err and "Traceback" not in err
