"""dagtrio bench: the baselines' correctness check, the runners, the CLI's errors and JSON."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from dagtrio import ActionRegistry, Coordinator, SqliteJournal
from dagtrio.bench import plot, runners
from dagtrio.bench.baselines import (
    check_scheduler,
    check_sync_scheduler,
    dask_sync,
    dask_threads,
    graphlib_trio,
    trio_floor,
    trio_minimal,
    trio_naive,
    trio_pooled,
)
from dagtrio.bench.generators import (
    Graph,
    chain_graph,
    fan_graph,
    graph_specs,
    layered_graph,
    make_graph,
)
from dagtrio.bench.results import SCHEMA, SCHEMA_VERSION
from dagtrio.bench.workload import ActionKind, Workload
from dagtrio.cli import main

GRAPHS = {
    "chain": chain_graph(12),
    "fan": fan_graph(12),
    "layered": layered_graph(60, width=6, seed=1),
}


async def noop(node: int) -> None:
    await trio.lowlevel.checkpoint()


# ----------------------------------------------------------------- the check itself


@pytest.mark.parametrize("shape", sorted(GRAPHS))
@pytest.mark.parametrize("scheduler", [trio_minimal, trio_pooled, trio_naive, graphlib_trio])
def test_correct_schedulers_pass_the_check(scheduler, shape: str) -> None:
    check_scheduler(scheduler, GRAPHS[shape], 3, noop)


def test_the_floor_runs_every_node_once_within_the_limit() -> None:
    check_scheduler(trio_floor, GRAPHS["layered"], 3, noop, ordered=False)


@pytest.mark.parametrize("scheduler", [dask_threads, dask_sync])
def test_dask_schedulers_pass_the_check(scheduler) -> None:
    pytest.importorskip("dask")
    check_sync_scheduler(scheduler, GRAPHS["layered"], 3, lambda *args: None)


async def ignores_deps(graph: Graph, max_parallel: int, action) -> None:
    # Last node first: every dependent starts before its deps.
    for node in reversed(range(len(graph))):
        await action(node)


async def drops_the_last_node(graph: Graph, max_parallel: int, action) -> None:
    await trio_minimal(graph[:-1], max_parallel, action)


async def runs_a_node_twice(graph: Graph, max_parallel: int, action) -> None:
    await trio_minimal(graph, max_parallel, action)
    await action(0)


async def ignores_the_limit(graph: Graph, max_parallel: int, action) -> None:
    await trio_minimal(graph, max_parallel + 5, action)


@pytest.mark.parametrize(
    ("scheduler", "message"),
    [
        (ignores_deps, "started before its deps"),
        (drops_the_last_node, "1 nodes never ran"),
        (runs_a_node_twice, "node 0 ran more than once"),
        (ignores_the_limit, "actions ran at once"),
    ],
)
def test_the_check_catches_a_broken_scheduler(scheduler, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_scheduler(scheduler, fan_graph(12), 2, noop, name="broken")


def test_the_floor_fails_the_ordered_check() -> None:
    # It ignores deps by design, which is why it is checked with ordered=False.
    with pytest.raises(AssertionError, match="started before its deps"):
        check_scheduler(trio_floor, chain_graph(10), 4, noop)


def test_check_report_catches_a_dagtrio_run_of_the_wrong_graph() -> None:
    registry = ActionRegistry()
    registry.action("noop")(noop)
    report = trio.run(Coordinator(registry).run, graph_specs(chain_graph(8)))
    runners.check_report(report, chain_graph(8))
    with pytest.raises(AssertionError, match="has deps"):
        runners.check_report(report, fan_graph(8))
    with pytest.raises(AssertionError, match="wrong nodes"):
        runners.check_report(report, chain_graph(9))


@pytest.mark.parametrize("shape", ["chain", "fan", "layered", "random", "growth"])
def test_every_available_runner_checks_and_times_a_tiny_graph(shape: str) -> None:
    workload = Workload(shape=shape, nodes=25, width=5, max_parallel=3, hooks=1)
    graph = workload.graph()
    for name in runners.runner_names(shape, compare=True, journal=True):
        runner = runners.RUNNERS[name]
        if runner.unavailable():
            continue
        trial = runner.prepare(workload, graph)
        trial.check()
        assert trial.run() >= 0


def test_action_kinds_parse_and_refuse_nonsense() -> None:
    assert ActionKind.parse("noop") == ActionKind("noop")
    assert ActionKind.parse("sleep:0.5") == ActionKind("sleep", 0.5)
    assert str(ActionKind.parse("cpu:20")) == "cpu:20"
    for bad in ["nop", "noop:1", "sleep", "sleep:x", "cpu:-1", "cpu:inf", "gpu:3"]:
        with pytest.raises(ValueError, match="action"):
            ActionKind.parse(bad)


# ---------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "argument --nodes: must be >= 1, got 0"),
        (["--nodes", "10,-4"], "argument --nodes: must be >= 1, got -4"),
        (["--max-parallel", "-2"], "argument --max-parallel: must be >= 1, got -2"),
        (["--max-parallel", "0"], "argument --max-parallel: must be >= 1, got 0"),
        (["--shape", "star"], "argument --shape: invalid choice: 'star'"),
        (["--action", "boil:3"], "argument --action: unknown action 'boil:3'"),
        (["--action", "sleep:soon"], "argument --action: action 'sleep:soon'"),
        (["--repeats", "0"], "argument --repeats: must be >= 1"),
        (["--hooks", "-1"], "argument --hooks: must be >= 0"),
        (["--density", "0"], "argument --density: must be in (0, 1]"),
        (["--runners", "dask-cloud"], "argument --runners: unknown runner 'dask-cloud'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("dagtrio bench: error: ")
    assert message in err


def test_no_subcommand_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "dagtrio: error:" in capsys.readouterr().err


def test_plot_without_matplotlib_is_refused_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(plot, "available", lambda: False)
    assert main(["bench", "--nodes", "5", "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"dagtrio bench: error: {plot.MISSING}"
    assert not (tmp_path / "p.png").exists()


def test_an_output_folder_that_does_not_exist_is_refused_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--nodes", "5", "--json", str(tmp_path / "no" / "out.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--json: the folder" in err and "does not exist" in err


def bench(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "out.json"
    code = main(["bench", "--in-process", "--quiet", "--repeats", "2", "--json", str(path), *args])
    return code, json.loads(path.read_text())


def test_json_document_follows_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data = bench(tmp_path, "--nodes", "30,40", "--width", "5", "--compare")
    assert code == 0
    assert data["schema"] == SCHEMA
    assert data["version"] == SCHEMA_VERSION == 1
    assert data["command"].startswith("dagtrio bench --in-process")
    params = data["parameters"]
    assert params["nodes"] == [30, 40]
    assert params["shape"] == "layered"
    assert params["max_parallel"] == 64 and params["action"] == "noop"
    assert params["compare"] is True
    machine = data["machine"]
    assert {"python", "system", "machine", "cpu_count", "packages"} <= machine.keys()
    assert machine["packages"]["dagtrio"]
    names = [
        "trio-floor",
        "trio-minimal",
        "trio-pooled",
        "trio-naive",
        "graphlib",
        "dask-threads",
        "dask-sync",
        "dagtrio",
    ]
    assert [r["name"] for r in data["results"]] == names * 2
    keys = {
        "name", "status", "nodes", "edges", "times_s", "median_s", "best_s", "nodes_per_s",
        "peak_bytes", "peak_bytes_per_node", "memory_method", "ratio_to_floor", "skipped",
        "error",
    }  # fmt: skip
    for result in data["results"]:
        assert set(result) == keys
        if result["name"].startswith("dask") and result["status"] == "skipped":
            assert "dask is not installed" in result["skipped"]
            assert result["median_s"] is None and result["ratio_to_floor"] is None
            continue
        assert result["status"] == "ok", result
        assert result["nodes"] in (30, 40)
        assert len(result["times_s"]) == 2
        assert result["best_s"] <= result["median_s"]
        assert result["nodes_per_s"] == pytest.approx(result["nodes"] / result["median_s"])
        assert result["memory_method"] == "tracemalloc"
        assert result["peak_bytes_per_node"] == pytest.approx(
            result["peak_bytes"] / result["nodes"]
        )
        assert result["skipped"] is None and result["error"] is None
    floors = [r for r in data["results"] if r["name"] == "trio-floor"]
    assert all(r["ratio_to_floor"] == 1.0 for r in floors)
    out = capsys.readouterr().out
    assert "trio-floor" in out and "dagtrio" in out and "x floor" in out


def test_a_missing_dask_is_a_one_line_note_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def without_dask(name: str, *args: Any) -> Any:
        return None if name == "dask" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_dask)
    code, data = bench(tmp_path, "--nodes", "20", "--compare")
    assert code == 0
    skipped = [r for r in data["results"] if r["status"] == "skipped"]
    assert [r["name"] for r in skipped] == ["dask-threads", "dask-sync"]
    out, err = capsys.readouterr()
    assert "dask-threads: skipped, dask is not installed (pip install 'dagtrio[bench]')" in out
    assert "Traceback" not in out + err


def test_a_runner_that_fails_its_check_is_reported_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = runners.Runner("trio-minimal", "broken", runners._trio(ignores_deps))
    monkeypatch.setitem(runners.RUNNERS, "trio-minimal", broken)
    code, data = bench(
        tmp_path, "--shape", "chain", "--nodes", "20", "--runners", "trio-minimal,dagtrio"
    )
    assert code == 1
    by_name = {r["name"]: r for r in data["results"]}
    assert by_name["trio-minimal"]["status"] == "failed"
    assert "started before its deps" in by_name["trio-minimal"]["error"]
    assert by_name["trio-minimal"]["times_s"] == []
    assert by_name["dagtrio"]["status"] == "ok"
    assert "FAILED" in capsys.readouterr().out


def test_growth_runs_dagtrio_growing_and_static(tmp_path: Path) -> None:
    code, data = bench(tmp_path, "--shape", "growth", "--nodes", "40", "--width", "5")
    assert code == 0
    assert [r["name"] for r in data["results"]] == ["trio-floor", "dagtrio", "dagtrio-static"]
    assert {r["nodes"] for r in data["results"]} == {40}


def test_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "scaling.png"
    code, _ = bench(tmp_path, "--nodes", "10,20", "--memory", "none", "--plot", str(path))
    assert code == 0
    assert path.read_bytes().startswith(b"\x89PNG")


def test_python_dash_m_dagtrio_bench_runs_each_runner_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagtrio",
            "bench",
            "--nodes",
            "20",
            "--repeats",
            "1",
            "--json",
            path,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(path.read_text())
    assert data["parameters"]["in_process"] is False
    assert [(r["name"], r["status"]) for r in data["results"]] == [
        ("trio-floor", "ok"),
        ("dagtrio", "ok"),
    ]
    assert "dagtrio" in done.stdout


def test_workload_round_trips_and_validates() -> None:
    workload = Workload(shape="random", nodes=50, density=0.1, action="cpu:3", hooks=2)
    assert Workload.from_dict(json.loads(json.dumps(workload.to_dict()))) == workload
    assert len(workload.graph()) == len(make_graph("random", 50, density=0.1))
    with pytest.raises(ValueError, match="unknown action"):
        Workload(shape="chain", nodes=3, action="nap")
    with pytest.raises(ValueError, match="max_parallel must be an int >= 1"):
        Workload(shape="chain", nodes=3, max_parallel=0)


# ------------------------------------------------------------------------ --journal


def journaled_run(path: Path, graph: Graph) -> Any:
    registry = ActionRegistry()
    registry.action("noop")(noop)
    journal = SqliteJournal(path)
    try:
        return trio.run(Coordinator(registry, journal=journal).run, graph_specs(graph))
    finally:
        journal.close()


def tamper(path: Path, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(sql)


def test_check_journal_passes_a_faithful_journal_and_catches_a_lost_outcome(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    report = journaled_run(path, fan_graph(8))
    runners.check_journal(SqliteJournal(path), report)
    tamper(path, "DELETE FROM records WHERE kind = 'outcome' AND node = 'n7'")
    with pytest.raises(AssertionError, match=r"no outcome recorded for \['n7'\]"):
        runners.check_journal(SqliteJournal(path), report)


def test_check_journal_catches_a_journal_that_disagrees_with_the_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    report = journaled_run(path, chain_graph(5))
    tamper(path, "UPDATE records SET attempts = 2 WHERE kind = 'outcome' AND node = 'n3'")
    with pytest.raises(AssertionError, match=r"n3\.attempts is 2, the run said 1"):
        runners.check_journal(SqliteJournal(path), report)


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where `tempfile` puts the journals, in this process, so a test can see them go."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_journal_runs_dagtrio_with_and_without_a_journal_and_gives_the_ratio(
    tmp_path: Path,
    temp_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checked: list[Path] = []
    real_check = runners.check_journal

    def spy(journal: SqliteJournal, report: Any) -> None:
        path = Path(journal.path)
        assert path.is_file() and path.parent.parent == temp_folder
        checked.append(path)
        real_check(journal, report)

    monkeypatch.setattr(runners, "check_journal", spy)
    code, data = bench(tmp_path, "--journal", "--nodes", "30,40", "--width", "5")
    assert code == 0
    names = ["trio-floor", "dagtrio", "dagtrio-journal"]
    assert [(r["name"], r["status"]) for r in data["results"]] == [
        (name, "ok") for name in names * 2
    ]
    assert data["parameters"]["journal"] is True
    assert data["parameters"]["runners"] == names
    assert [entry["nodes"] for entry in data["journal"]] == [30, 40]
    by_size = {(r["name"], r["nodes"]): r for r in data["results"]}
    for entry in data["journal"]:
        on, off = by_size["dagtrio-journal", entry["nodes"]], by_size["dagtrio", entry["nodes"]]
        assert entry["throughput_ratio"] == pytest.approx(on["nodes_per_s"] / off["nodes_per_s"])
        assert len(on["times_s"]) == 2 and on["peak_bytes"] is not None
    # The check verified one journal per size, each in a folder of its own, all gone now.
    assert len(checked) == 2 and len({path.parent for path in checked}) == 2
    assert list(temp_folder.iterdir()) == []
    out = capsys.readouterr().out
    assert out.count("journal on ÷ off: ") == 2
    assert "dagtrio-journal: a fresh journal file per run" in out


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--shape", "growth", "--hooks", "1"], ["dagtrio", "dagtrio-static", "dagtrio-journal"]),
        (["--shape", "random", "--compare"], ["trio-minimal", "trio-pooled", "trio-naive",
                                              "graphlib", "dask-threads", "dask-sync",
                                              "dagtrio", "dagtrio-journal"]),
        (["--shape", "chain", "--runners", "trio-minimal"], ["trio-minimal", "dagtrio",
                                                             "dagtrio-journal"]),
    ],
)  # fmt: skip
def test_journal_works_with_every_shape_hooks_compare_and_runners(
    tmp_path: Path, temp_folder: Path, args: list[str], names: list[str]
) -> None:
    code, data = bench(tmp_path, "--journal", "--nodes", "40", "--width", "5", *args)
    assert code == 0
    assert [r["name"] for r in data["results"]] == ["trio-floor", *names]
    assert all(r["status"] in ("ok", "skipped") for r in data["results"])
    assert [entry["nodes"] for entry in data["journal"]] == [40]
    assert list(temp_folder.iterdir()) == []


def test_the_journal_runner_alone_gives_no_ratio(tmp_path: Path, temp_folder: Path) -> None:
    code, data = bench(tmp_path, "--nodes", "20", "--runners", "dagtrio-journal")
    assert code == 0
    assert [(r["name"], r["status"]) for r in data["results"]] == [
        ("trio-floor", "ok"),
        ("dagtrio-journal", "ok"),
    ]
    assert data["parameters"]["journal"] is False
    assert data["journal"] == []


def test_without_journal_the_document_has_an_empty_journal_list(tmp_path: Path) -> None:
    code, data = bench(tmp_path, "--nodes", "20", "--memory", "none")
    assert code == 0
    assert data["journal"] == []
    assert "dagtrio-journal" not in [r["name"] for r in data["results"]]


def test_python_dash_m_dagtrio_bench_journal_cleans_up_its_temporary_files(
    tmp_path: Path,
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    path = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, "-m", "dagtrio", "bench", "--journal", "--nodes", "20",
         "--repeats", "1", "--json", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(temp)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(path.read_text())
    assert [(r["name"], r["status"]) for r in data["results"]] == [
        ("trio-floor", "ok"),
        ("dagtrio", "ok"),
        ("dagtrio-journal", "ok"),
    ]
    assert data["journal"][0]["throughput_ratio"] > 0
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_dagtrio_runs_its_nodes_on_the_chosen_executor(tmp_path: Path, executor: str) -> None:
    if executor == "process":
        pytest.importorskip("trio_parallel")
    code, data = bench(
        tmp_path,
        "--nodes", "30", "--width", "5", "--action", "cpu:50", "--executor", executor,
        "--runners", "dagtrio", "--memory", "none",
    )  # fmt: skip
    assert code == 0
    params = data["parameters"]
    assert params["executor"] == executor
    assert params["cpu_rate"] > 0  # calibrated once, the same for every runner
    [dagtrio] = [r for r in data["results"] if r["name"] == "dagtrio"]
    assert dagtrio["status"] == "ok", dagtrio["error"]


def test_cpu_work_is_a_fixed_number_of_loop_turns() -> None:
    kind = ActionKind.parse("cpu:100")
    assert attrs.evolve(kind, rate=2.5).iterations == 250
    assert attrs.evolve(kind, rate=2.5) == kind  # the rate is not what the action is
    with pytest.raises(ValueError, match="unknown executor 'gpu'"):
        Workload(shape="layered", nodes=5, executor="gpu")
