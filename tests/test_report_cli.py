"""dagtrio report: the runs of a journal, one run node by node, and one-line errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dagtrio import (
    ActionRegistry,
    Coordinator,
    NodeCtx,
    NodeRecord,
    NodeSpec,
    NodeStatus,
    RunInfo,
    RunReport,
    SqliteJournal,
)
from dagtrio.cli import main
from dagtrio.cli.report import format_duration, order_nodes, resolve_run_id

#: set by the ``hang`` action once it runs, so a test can cancel the run from outside
HANGING: list[trio.Event] = []


def registry() -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def ok(ctx: NodeCtx) -> int:
        await trio.sleep(ctx.inputs.get("seconds", 0.0))
        return len(ctx.upstream)

    @reg.action()
    async def boom(ctx: NodeCtx) -> None:
        await trio.lowlevel.checkpoint()
        raise ValueError(ctx.inputs.get("message", "it went wrong\nand here is why"))

    @reg.action()
    async def hang(ctx: NodeCtx) -> None:
        HANGING[-1].set()
        await trio.sleep_forever()

    return reg


MIXED = [
    NodeSpec("ok", id="a", inputs={"seconds": 1.5}),
    NodeSpec("boom", id="b", deps=["a"], try_count=2),
    NodeSpec("ok", id="c", deps=["b"], branch="main/later"),
]


async def unfinished_run(coordinator: Coordinator, run_id: str) -> None:
    """Start a run and cancel it from outside: the journal keeps it as running."""
    HANGING.append(trio.Event())
    specs = [NodeSpec("hang", id="h"), NodeSpec("ok", id="after", deps=["h"])]
    with trio.CancelScope() as scope:
        async with coordinator.open_run(specs, dag_name="stuck", run_id=run_id):
            await HANGING[-1].wait()
            scope.cancel()


async def make_journal(path: Path) -> SqliteJournal:
    """Runs ``mixed`` (a failure), ``mixed-10`` and ``fine`` (successes), ``stuck`` (unfinished)."""
    journal = SqliteJournal(path)
    coordinator = Coordinator(registry(), journal=journal)
    await coordinator.run(MIXED, dag_name="etl", run_id="mixed")
    await coordinator.run([NodeSpec("ok", id="x")], dag_name="etl", run_id="mixed-10")
    await coordinator.run([NodeSpec("ok", id="y", inputs={"seconds": 90})], run_id="fine")
    await unfinished_run(coordinator, "stuck")
    return journal


@pytest.fixture(autouse=True)
def plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # Wide enough that no cell is cut, and no colour codes whatever the CI sets.
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


def report(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    """Run ``dagtrio report ARGV`` in this process: status, stdout, stderr."""
    status = main(["report", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def row(out: str, first_cell: str) -> list[str]:
    """The cells of the table row whose first cell is ``first_cell``."""
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{out}")


def header(out: str) -> dict[str, str]:
    """The lines above the node table (``run``, ``DAG``, ``verdict``...) as a dict."""
    lines = out.split("\n\n")[0].splitlines()
    return {line.split()[0]: line.split(maxsplit=1)[1].strip() for line in lines}


def assert_one_line_error(status: int, out: str, err: str, expected_status: int = 1) -> None:
    assert status == expected_status
    assert out == ""
    assert err.startswith("dagtrio report: error: ")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err


# ------------------------------------------------------------------ the list of runs


async def test_the_list_shows_every_run_oldest_first_with_its_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    status, out, err = report(capsys, tmp_path / "runs.db")
    assert (status, err) == (0, "")
    ids = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert ids == ["mixed", "mixed-10", "fine", "stuck"]
    assert row(out, "mixed")[1:4] == ["etl", "finished", "no"]
    assert row(out, "mixed")[6] == "3"
    assert row(out, "fine")[1:4] == ["dag", "finished", "yes"]
    assert row(out, "fine")[5] == "1m 30s"
    assert row(out, "stuck")[1:4] == ["stuck", "running", "-"]
    assert row(out, "stuck")[5] == "-"
    assert "4 runs, 1 still running or left unfinished (resumable)" in out


async def test_an_empty_journal_says_it_has_no_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    SqliteJournal(path).runs()
    assert report(capsys, path) == (0, f"journal {path} has no runs\n", "")
    assert report(capsys, path, "--json") == (0, "[]\n", "")


async def test_the_list_as_json_is_every_run_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    journal = await make_journal(tmp_path / "runs.db")
    status, out, _ = report(capsys, tmp_path / "runs.db", "--json")
    assert status == 0
    assert json.loads(out) == [attrs.asdict(info) for info in journal.runs()]


# ------------------------------------------------------------------ one run


async def test_one_run_shows_each_node_in_start_order_and_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    status, out, err = report(capsys, tmp_path / "runs.db", "mixed")
    assert (status, err) == (0, "")
    assert header(out) | {"started": "", "finished": ""} == {
        "run": "mixed",
        "DAG": "etl",
        "status": "finished",
        "verdict": "failed",
        "started": "",
        "finished": "",
        "duration": "1.50 s",
    }
    nodes = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert nodes == ["a", "b", "c"]
    # node, action, branch, status, attempts, start, duration, error
    assert row(out, "a")[:5] == ["a", "ok", "main", "succeeded", "1"]
    assert row(out, "a")[6] == "1.50 s"
    assert row(out, "b")[3:5] == ["failed", "2"]
    # Only the first line of a long error, marked as cut.
    assert row(out, "b")[7] == "ValueError: it went wrong …"
    assert row(out, "c") == ["c", "ok", "main/later", "skipped", "0", "-", "-", "dep 'b' failed"]
    assert "3 nodes: 1 succeeded, 1 failed, 1 skipped" in out


async def test_an_unfinished_run_shows_as_running_with_its_waiting_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    status, out, _ = report(capsys, tmp_path / "runs.db", "stuck")
    assert status == 0
    assert header(out)["status"] == "running"
    assert header(out)["verdict"] == "unfinished: still running, or its process died (resumable)"
    assert header(out)["finished"] == header(out)["duration"] == "-"
    assert row(out, "h")[3] == "ready"
    assert row(out, "after")[3] == "pending"
    assert "2 nodes: 1 pending, 1 ready" in out


async def test_cached_nodes_are_marked_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ActionRegistry()

    @reg.action(cache=True)
    async def square(ctx: NodeCtx) -> int:
        await trio.lowlevel.checkpoint()
        return int(ctx.inputs["x"]) ** 2

    journal = SqliteJournal(tmp_path / "runs.db")
    coordinator = Coordinator(reg, journal=journal, cache=journal)
    await coordinator.run([NodeSpec("square", id="kept", inputs={"x": 2})], run_id="first")
    await coordinator.run(
        [
            NodeSpec("square", id="kept", inputs={"x": 2}),
            NodeSpec("square", id="ran", inputs={"x": 3}),
        ],
        run_id="second",
    )
    status, out, _ = report(capsys, tmp_path / "runs.db", "second")
    assert status == 0
    assert row(out, "kept")[3] == "succeeded (cached)"
    assert row(out, "ran")[3] == "succeeded"
    assert "2 nodes: 2 succeeded; 1 cached (outputs reused, not run)" in out


async def test_one_run_as_json_round_trips_to_the_journals_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    journal = await make_journal(tmp_path / "runs.db")
    for run_id in ("mixed", "stuck"):
        status, out, _ = report(capsys, tmp_path / "runs.db", run_id, "--json")
        assert status == 0
        assert RunReport.from_json(out) == journal.report(run_id)


async def test_status_filters_the_node_table_but_not_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    for argv in (["--status", "failed,skipped"], ["--status", "skipped", "--status", "FAILED"]):
        status, out, _ = report(capsys, tmp_path / "runs.db", "mixed", *argv)
        assert status == 0
        nodes = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
        assert nodes == ["b", "c"]
        assert "showing 2 of 3 nodes" in out
        assert "3 nodes: 1 succeeded, 1 failed, 1 skipped" in out
    status, out, _ = report(capsys, tmp_path / "runs.db", "mixed", "--limit", "1")
    nodes = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert (status, nodes) == (0, ["a"])
    assert "showing 1 of 3 nodes" in out


async def test_run_ids_and_errors_are_printed_as_they_are_not_as_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = SqliteJournal(tmp_path / "runs.db")
    await Coordinator(registry(), journal=journal).run(
        [NodeSpec("boom", id="[bold]n[/bold]", inputs={"message": "[red]no[/red]"})],
        run_id="[x]",
    )
    status, out, _ = report(capsys, tmp_path / "runs.db")
    assert (status, row(out, "[x]")[0]) == (0, "[x]")
    status, out, _ = report(capsys, tmp_path / "runs.db", "[x]")
    assert status == 0
    assert row(out, "[bold]n[/bold]")[7] == "ValueError: [red]no[/red]"


# ------------------------------------------------------------------ choosing the run


async def test_a_prefix_naming_one_run_picks_it_and_an_exact_id_beats_longer_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    status, out, _ = report(capsys, tmp_path / "runs.db", "fi")
    assert (status, header(out)["run"]) == (0, "fine")
    # "mixed" is also a prefix of "mixed-10": the exact id wins.
    status, out, _ = report(capsys, tmp_path / "runs.db", "mixed")
    assert (status, header(out)["run"]) == (0, "mixed")
    status, out, _ = report(capsys, tmp_path / "runs.db", "mixed-")
    assert (status, header(out)["run"]) == (0, "mixed-10")
    assert "1 node: 1 succeeded" in out


async def test_an_ambiguous_prefix_is_one_line_listing_the_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    status, out, err = report(capsys, tmp_path / "runs.db", "mix")
    assert_one_line_error(status, out, err)
    assert "'mix' is ambiguous" in err and "mixed, mixed-10" in err


async def test_an_unknown_run_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    await make_journal(tmp_path / "runs.db")
    for argv in (["nope"], ["nope", "--json"]):
        status, out, err = report(capsys, tmp_path / "runs.db", *argv)
        assert_one_line_error(status, out, err)
        assert "has no run 'nope'" in err


def test_resolve_run_id_rules() -> None:
    runs = [attrs.evolve(_info("x"), run_id=run_id) for run_id in ("ab", "abc", "abd", "z")]
    assert resolve_run_id("ab", runs) == "ab"
    assert resolve_run_id("abc", runs) == "abc"
    assert resolve_run_id("z", runs) == "z"
    with pytest.raises(ValueError, match="ambiguous: it starts ab, abc, abd"):
        resolve_run_id("a", runs)
    with pytest.raises(KeyError):
        resolve_run_id("q", runs)
    many = [attrs.evolve(_info("x"), run_id=f"r{i:02d}") for i in range(15)]
    with pytest.raises(ValueError, match=r"r09 and 5 more$"):
        resolve_run_id("r", many)


def _info(run_id: str) -> RunInfo:
    return RunInfo(run_id, "dag", "finished", 0.0, 1.0, True, None, 1)


# ------------------------------------------------------------------ bad files and arguments


def test_a_missing_journal_is_one_line_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typo.db"
    for argv in ([path], [path, "some-run"], [path, "--json"]):
        status, out, err = report(capsys, *argv)
        assert_one_line_error(status, out, err)
        assert "no such file" in err
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_is_not_turned_into_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    status, out, err = report(capsys, path)
    assert_one_line_error(status, out, err)
    assert "not a dagtrio journal (the file is empty)" in err
    assert path.read_bytes() == b""
    status, out, err = report(capsys, tmp_path)
    assert_one_line_error(status, out, err)
    assert "is a folder" in err


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not sqlite at all" * 100)


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()


def _newer(path: Path) -> None:
    SqliteJournal(path).runs()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_garbage, "not a dagtrio journal or is corrupt"),
        (_foreign, "not a dagtrio journal"),
        (_newer, "newer dagtrio"),
    ],
)
def test_a_file_that_is_not_a_journal_we_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    path = tmp_path / "bad.db"
    make(path)
    for argv in ([path], [path, "run"]):
        status, out, err = report(capsys, *argv)
        assert_one_line_error(status, out, err)
        assert message in err


async def test_a_damaged_record_is_one_line_naming_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.db"
    journal = SqliteJournal(path)
    await Coordinator(registry(), journal=journal).run([NodeSpec("ok", id="a")], run_id="r")
    journal.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET data = '{' WHERE kind = 'add'")
    db.close()
    status, out, err = report(capsys, path, "r")
    assert_one_line_error(status, out, err)
    assert f"journal {path}: run 'r': record 1 (add) cannot be read back" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--status", "failed"], "give a RUN_ID"),
        (["r", "--status", "bogus"], "unknown status 'bogus'"),
        (["r", "--limit", "0"], "must be >= 1"),
        (["r", "--json", "--limit", "3"], "--json prints the whole run"),
        ([""], "RUN_ID is empty"),
    ],
)
def test_bad_arguments_are_one_line_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = report(capsys, tmp_path / "runs.db", *argv)
    assert status == 2
    assert out == "" and err.count("\n") == 1 and message in err
    assert not (tmp_path / "runs.db").exists()


# ------------------------------------------------------------------ the pieces


def test_durations_read_naturally() -> None:
    assert format_duration(None) == "-"
    assert format_duration(0.0123) == "12.3 ms"
    assert format_duration(4.561) == "4.56 s"
    assert format_duration(125) == "2m 05s"
    assert format_duration(3720.5) == "1h 02m"


def test_nodes_are_ordered_by_start_then_the_never_started_in_graph_order() -> None:
    def node(node_id: str, started: float | None) -> NodeRecord:
        return NodeRecord(node_id, "ok", "main", (), NodeStatus.PENDING, started_at=started)

    nodes = [node("late", 3.0), node("never-1", None), node("early", 1.0), node("never-2", None)]
    nodes.append(node("early-too", 1.0))
    assert [n.id for n in order_nodes(nodes)] == [
        "early",
        "early-too",
        "late",
        "never-1",
        "never-2",
    ]


async def test_a_runs_own_error_is_whole_in_its_header_and_cut_in_the_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = SqliteJournal(tmp_path / "runs.db")
    coordinator = Coordinator(registry(), journal=journal, on_failure="fail_fast")
    await coordinator.run([NodeSpec("boom", id="b")], run_id="ff")
    status, out, _ = report(capsys, tmp_path / "runs.db")
    assert status == 0
    assert row(out, "ff")[7] == "fail_fast: node 'b' failed: ValueError: it went wrong …"
    status, out, _ = report(capsys, tmp_path / "runs.db", "ff")
    assert status == 0
    assert header(out)["verdict"] == "failed"
    assert "error     fail_fast: node 'b' failed: ValueError: it went wrong\n" in out
    assert "\n          and here is why\n" in out
