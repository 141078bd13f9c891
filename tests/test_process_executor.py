"""`ProcessExecutor` against real trio-parallel worker processes (real time: facts, not
durations). A cancelled or timed-out attempt's worker is shown to be gone."""

from __future__ import annotations

import functools
import os
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
import trio

pytest.importorskip("trio_parallel")

import remote_actions

from dagtrio import (
    ActionRegistry,
    CancelBranch,
    Coordinator,
    NodeCancelled,
    NodeSpec,
    NodeStatus,
)
from dagtrio.executors import ProcessExecutor
from dagtrio.testing import RecordingHook, check_run


def _registry() -> ActionRegistry:
    return remote_actions.registry("process")


# Polling, with no event to wait on: another process is what changes.


async def _gone(pid: int) -> bool:
    """Whether ``pid`` is gone within a second of asking."""
    with trio.move_on_after(1.0):
        while remote_actions.alive(pid):  # noqa: ASYNC110
            await trio.sleep(0.01)
        return True
    return False


def _read_pid(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text else None


async def _pid_in(path: Path) -> int:
    """The pid a `spin` attempt wrote; a clear failure rather than a hang if none does."""
    with trio.fail_after(60):
        while (pid := _read_pid(path)) is None:  # noqa: ASYNC110
            await trio.sleep(0.01)
    return pid


async def test_a_graph_runs_in_worker_processes_with_a_portable_context() -> None:
    coordinator = Coordinator(
        _registry(), executors={"process": ProcessExecutor(max_workers=2)}, app_data="x"
    )
    report = await coordinator.run(
        [
            NodeSpec("square", id="a", inputs={"x": 3}),
            NodeSpec("square", id="b", inputs={"x": 4}),
            NodeSpec("add_upstream", id="sum", deps=["a", "b"], inputs={"x": 1}),
            NodeSpec("context_fields", id="ctx", deps=["sum"], inputs={"k": [1, 2]}),
            NodeSpec("pid", id="here", executor="inline"),
        ],
        dag_name="d",
        run_id="r",
    )
    assert report.success, report.nodes
    assert report.nodes["sum"].outputs == 9 + 16 + 1
    fields = report.nodes["ctx"].outputs
    assert fields["type"] == "PortableCtx"
    assert fields["pid"] != os.getpid()
    assert (fields["dag_name"], fields["node_id"], fields["run_id"]) == ("d", "ctx", "r")
    assert (fields["inputs"], fields["upstream"], fields["attempt"]) == (
        {"k": [1, 2]},
        {"sum": 26},
        1,
    )
    assert report.nodes["here"].outputs == os.getpid()  # the spec's executor wins


async def test_a_cancelled_branch_kills_its_worker(tmp_path: Path) -> None:
    hook = RecordingHook()
    coordinator = Coordinator(_registry(), [hook], executors={"process": ProcessExecutor()})
    pid_file = tmp_path / "pid"
    async with coordinator.open_run(
        [NodeSpec("spin", id="spin", branch="main/work", inputs={"pid_file": str(pid_file)})]
    ) as run:
        pid = await _pid_in(pid_file)
        assert remote_actions.alive(pid)
        await run.submit(CancelBranch("main/work", reason="enough"))
        assert await _gone(pid)
    report = await run.wait()
    check_run(report, hook.events)
    [cancelled] = [e for e in hook.events if isinstance(e, NodeCancelled)]
    assert cancelled.ended == "killed"
    assert report.nodes["spin"].ended == "killed"
    assert not remote_actions.alive(pid)


async def test_a_timed_out_attempt_kills_its_worker_and_is_retried(tmp_path: Path) -> None:
    coordinator = Coordinator(_registry(), executors={"process": ProcessExecutor(max_workers=1)})
    pid_file = tmp_path / "pid"
    async with coordinator.open_run(
        [
            # Starts the worker first, so that the spin's first attempt surely begins
            # within its timeout (which counts from the attempt's start).
            NodeSpec("pid", id="warm"),
            NodeSpec(
                "spin",
                id="spin",
                deps=["warm"],
                timeout=0.5,
                try_count=2,
                inputs={"pid_file": str(pid_file)},
            ),
        ]
    ) as run:
        first = await _pid_in(pid_file)
    report = await run.wait()
    assert report.nodes["warm"].outputs == first  # the timeout killed that very worker
    assert not remote_actions.alive(first)
    record = report.nodes["spin"]
    assert (record.status, record.attempts, record.ended) == (NodeStatus.FAILED, 2, "killed")
    assert record.error == "timed out after 0.5s (attempt 2); its worker process was killed"


async def test_shutdown_kills_running_workers_after_the_grace(tmp_path: Path) -> None:
    coordinator = Coordinator(_registry(), executors={"process": ProcessExecutor()})
    pid_file = tmp_path / "pid"
    async with coordinator.open_run(
        [NodeSpec("spin", id="spin", inputs={"pid_file": str(pid_file)})]
    ) as run:
        pid = await _pid_in(pid_file)
        await run.shutdown(grace=0)
    report = await run.wait()
    assert report.nodes["spin"].status is NodeStatus.CANCELLED
    assert report.nodes["spin"].ended == "killed"
    assert await _gone(pid)


async def test_retries_and_remote_errors_keep_the_workers_traceback() -> None:
    coordinator = Coordinator(_registry(), executors={"process": ProcessExecutor(max_workers=1)})
    report = await coordinator.run(
        [NodeSpec("fail_first", id="f", try_count=2), NodeSpec("raise_in_worker", id="r")]
    )
    assert report.nodes["f"].status is NodeStatus.SUCCEEDED
    assert report.nodes["f"].outputs == 2
    record = report.nodes["r"]
    assert record.status is NodeStatus.FAILED
    assert record.error == "KeyError: 'deep inside the worker'"
    assert record.traceback is not None
    assert "RemoteTraceback" in record.traceback
    assert "in raise_in_worker" in record.traceback  # the worker's own frame


async def test_what_cannot_be_pickled_fails_its_node_with_a_name() -> None:
    registry = _registry()
    lock = threading.Lock()

    def holds_a_lock(ctx: Any) -> Any:
        return lock

    registry.action(executor="process")(holds_a_lock)
    coordinator = Coordinator(registry, executors={"process": ProcessExecutor(max_workers=1)})
    report = await coordinator.run(
        [
            NodeSpec("square", id="lock_input", inputs={"x": 2, "lock": lock}),
            NodeSpec("holds_a_lock", id="closure"),
            NodeSpec("return_lock", id="result"),
            NodeSpec("read_cache", id="cache"),
            NodeSpec("read_app_data", id="app"),
            NodeSpec("square", id="fine", inputs={"x": 5}),
        ]
    )
    errors = {node: record.error or "" for node, record in report.nodes.items()}
    assert "input 'lock' cannot be sent to a worker process" in errors["lock_input"]
    assert "its function" in errors["closure"] and "holds_a_lock" in errors["closure"]
    assert "returned a lock that cannot be pickled back" in errors["result"]
    assert "ctx.cache is not available to node 'cache'" in errors["cache"]
    assert "ctx.app_data is not available to node 'app'" in errors["app"]
    assert report.nodes["fine"].outputs == 25  # the pool survived all of it


async def test_a_function_the_workers_cannot_import_fails_its_node_with_a_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A module only this process has: the function pickles by reference here, and does
    # not load in a worker.
    only_here = types.ModuleType("dagtrio_test_only_here")
    exec("def local_only(ctx):\n    return 1\n", only_here.__dict__)
    monkeypatch.setitem(sys.modules, only_here.__name__, only_here)
    registry = _registry()
    registry.action(executor="process")(only_here.local_only)
    coordinator = Coordinator(registry, executors={"process": ProcessExecutor(max_workers=1)})
    report = await coordinator.run(
        [NodeSpec("local_only", id="stranger"), NodeSpec("square", id="fine", inputs={"x": 4})]
    )
    error = report.nodes["stranger"].error or ""
    assert "'local_only' or its context does not load in a worker process" in error
    assert "dagtrio_test_only_here" in error
    assert report.nodes["fine"].outputs == 16


SEEN = {"value": 1}


def _reads_a_global(ctx: Any) -> int:
    return SEEN["value"]


async def test_a_function_shipped_by_value_sees_its_globals_as_they_are_now() -> None:
    # As a function of `__main__` is: pickled by value, with the globals it reads.
    by_value = types.FunctionType(
        _reads_a_global.__code__, _reads_a_global.__globals__, "reads_a_global"
    )
    by_value.__module__ = "__main__"
    registry = _registry()
    registry.action("reads_a_global", executor="process")(by_value)
    async with ProcessExecutor(max_workers=1) as executor:
        coordinator = Coordinator(registry, executors={"process": executor})
        first = await coordinator.run([NodeSpec("reads_a_global", id="n")])
        SEEN["value"] = 2
        try:
            second = await coordinator.run([NodeSpec("reads_a_global", id="n")])
        finally:
            SEEN["value"] = 1
    assert (first.nodes["n"].outputs, second.nodes["n"].outputs) == (1, 2)


async def test_callables_with_state_ship_as_they_are_at_each_attempt() -> None:
    scaled = remote_actions.Scale(2)
    params = {"factor": 2}
    registry = _registry()
    registry.action("scaled", executor="process")(scaled)
    registry.action("partial", executor="process")(
        functools.partial(remote_actions.scale, params=params)
    )
    registry.action("count", executor="process")(remote_actions.Counter())
    specs = [
        NodeSpec("scaled", id="o", inputs={"x": 10}),
        NodeSpec("partial", id="p", inputs={"x": 10}),
        *(NodeSpec("count", id=f"c{i}") for i in range(3)),
    ]
    async with ProcessExecutor(max_workers=1) as executor:
        coordinator = Coordinator(registry, executors={"process": executor}, max_parallel=1)
        first = await coordinator.run(specs)
        scaled.factor = params["factor"] = 3
        second = await coordinator.run(specs)
    assert (first.nodes["o"].outputs, first.nodes["p"].outputs) == (20, 20)
    assert (second.nodes["o"].outputs, second.nodes["p"].outputs) == (30, 30)
    # One worker ran every attempt; none saw what an earlier one did to its copy.
    assert [first.nodes[f"c{i}"].outputs for i in range(3)] == [1, 1, 1]


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x


async def test_what_main_defines_ships_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a notebook or ``python -c``: `__main__` names a class and a function that
    # the workers' own `__main__` does not have.
    main = sys.modules["__main__"]
    point = type("dagtrio_test_Point", (_Point,), {"__module__": "__main__"})
    double = types.FunctionType(remote_actions.square.__code__, {}, "dagtrio_test_double")
    double.__module__, double.__qualname__ = "__main__", "dagtrio_test_double"
    monkeypatch.setattr(main, "dagtrio_test_Point", point, raising=False)
    monkeypatch.setattr(main, "dagtrio_test_double", double, raising=False)
    registry = _registry()
    registry.action("partial_of_main", executor="process")(functools.partial(double))
    coordinator = Coordinator(registry, executors={"process": ProcessExecutor(max_workers=1)})
    report = await coordinator.run(
        [
            NodeSpec("read_x", id="point", inputs={"point": point(7)}),
            NodeSpec("partial_of_main", id="partial", inputs={"x": 3}),
        ]
    )
    assert report.nodes["point"].outputs == 7, report.nodes["point"].error
    assert report.nodes["partial"].outputs == 9, report.nodes["partial"].error


async def test_a_worker_that_dies_fails_its_node_and_the_pool_goes_on() -> None:
    coordinator = Coordinator(_registry(), executors={"process": ProcessExecutor(max_workers=1)})
    report = await coordinator.run(
        [NodeSpec("die", id="die"), NodeSpec("square", id="after", deps=[], inputs={"x": 3})]
    )
    assert report.nodes["die"].status is NodeStatus.FAILED
    assert "died: killed by signal 9" in (report.nodes["die"].error or "")
    assert report.nodes["after"].outputs == 9


async def test_workers_are_cached_per_run_and_stop_with_it() -> None:
    executor = ProcessExecutor(max_workers=1)
    coordinator = Coordinator(_registry(), executors={"process": executor})
    first = await coordinator.run([NodeSpec("pid", id=f"p{i}") for i in range(4)])
    pids = {record.outputs for record in first.nodes.values()}
    assert len(pids) == 1  # one worker served every attempt
    [pid] = pids
    assert await _gone(pid)  # stopped with the run
    async with executor:
        one = await coordinator.run([NodeSpec("pid", id="p")])
        two = await coordinator.run([NodeSpec("pid", id="p")])
        assert one.nodes["p"].outputs == two.nodes["p"].outputs  # held open: shared
    assert await _gone(one.nodes["p"].outputs)


def test_bad_process_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_workers must be an int >= 1"):
        ProcessExecutor(max_workers=0)
    with pytest.raises(TypeError, match="kill_on_cancel must be True or False"):
        ProcessExecutor(kill_on_cancel="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="worker_type must be"):
        ProcessExecutor(worker_type="thread")  # type: ignore[arg-type]
    assert ProcessExecutor(kill_on_cancel=False).ending == "finished"


async def test_progress_from_a_worker_process_is_dropped_and_the_node_succeeds() -> None:
    from dagtrio import NodeProgress

    recorder = RecordingHook()
    coordinator = Coordinator(
        _registry(), [recorder], executors={"process": ProcessExecutor(max_workers=1)}
    )
    report = await coordinator.run(
        [NodeSpec("chatty", id="far"), NodeSpec("chatty", id="near", executor="thread")]
    )
    assert report.success, report.nodes
    progress = [(e.node.node, e.payload) for e in recorder.events if isinstance(e, NodeProgress)]
    assert progress == [("near", 0), ("near", 1), ("near", 2)]
