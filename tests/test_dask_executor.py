"""`DaskExecutor` against a real `distributed.LocalCluster` of two worker processes
(the session's ``dask_client``; real time: facts, not durations)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio

pytest.importorskip("distributed")

import remote_actions

from dagtrio import (
    ActionRegistry,
    AddNode,
    AddNodes,
    CancelBranch,
    Coordinator,
    ExecutionEvent,
    HookContext,
    NodeCancelled,
    NodeCompleted,
    NodeSpec,
    NodeStatus,
)
from dagtrio.executors import DaskExecutor
from dagtrio.testing import RecordingHook, check_run


def _registry() -> ActionRegistry:
    return remote_actions.registry("dask")


async def test_a_growing_dag_runs_on_the_cluster(dask_client: Any) -> None:
    async def grow(ctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeCompleted) and event.node.node == "a":
            return [AddNode(NodeSpec("add_upstream", id="grown", deps=["a", "b"]))]
        return None

    hook = RecordingHook()
    coordinator = Coordinator(
        _registry(), [grow, hook], executors={"dask": DaskExecutor(client=dask_client)}
    )
    report = await coordinator.run(
        [
            NodeSpec("square", id="a", inputs={"x": 3}),
            NodeSpec("square", id="b", inputs={"x": 4}),
            NodeSpec("fail_first", id="retried", try_count=2),
            NodeSpec("raise_in_worker", id="raises"),
            NodeSpec("read_cache", id="cache"),
            NodeSpec("context_fields", id="ctx", deps=["a"], inputs={"k": 1}),
        ],
        run_id="r",
    )
    check_run(report, hook.events)
    assert report.nodes["grown"].outputs == 9 + 16
    assert report.nodes["retried"].outputs == 2
    assert report.nodes["retried"].attempts == 2
    raised = report.nodes["raises"]
    assert raised.error == "KeyError: 'deep inside the worker'"
    assert raised.traceback is not None and "in raise_in_worker" in raised.traceback
    assert "ctx.cache is not available" in (report.nodes["cache"].error or "")
    fields = report.nodes["ctx"].outputs
    assert fields["type"] == "PortableCtx"
    assert fields["pid"] != os.getpid()
    assert (fields["upstream"], fields["run_id"], fields["inputs"]) == ({"a": 9}, "r", {"k": 1})


async def test_results_fetched_together_reach_their_own_nodes(dask_client: Any) -> None:
    # Many more attempts than worker threads: results are fetched in batches, values
    # and errors mixed; each must reach its own node.
    coordinator = Coordinator(
        _registry(), executors={"dask": DaskExecutor(client=dask_client)}, max_parallel=16
    )
    specs = [
        NodeSpec("raise_in_worker", id=f"n{i}")
        if i % 3 == 0
        else NodeSpec("square", id=f"n{i}", inputs={"x": i})
        for i in range(60)
    ]
    report = await coordinator.run(specs)
    for i in range(60):
        record = report.nodes[f"n{i}"]
        if i % 3 == 0:
            assert record.status is NodeStatus.FAILED
            assert record.error == "KeyError: 'deep inside the worker'"
        else:
            assert (record.status, record.outputs) == (NodeStatus.SUCCEEDED, i * i)


async def test_a_cancelled_task_is_abandoned_and_nothing_queues_behind_it(
    dask_client: Any, tmp_path: Path
) -> None:
    """Two workers of one thread. A long task is cancelled: Dask's scheduler thinks its
    worker free at once, but the work runs on there. Quick tasks added then must all
    run on the other worker, before the abandoned work ends, not queue behind it."""
    hook = RecordingHook()
    coordinator = Coordinator(
        _registry(), [hook], executors={"dask": DaskExecutor(client=dask_client)}
    )
    end_file = tmp_path / "end"
    async with coordinator.open_run(
        [
            NodeSpec(
                "nap",
                id="doomed",
                branch="main/doomed",
                inputs={"seconds": 3.0, "end_file": str(end_file)},
            )
        ]
    ) as run:
        while run.graph.status("doomed") is not NodeStatus.RUNNING:  # noqa: ASYNC110
            await trio.sleep(0.05)
        await trio.sleep(0.5)  # the task has started on its worker
        await run.submit(CancelBranch("main/doomed"))
        await run.submit(
            AddNodes([NodeSpec("nap", id=f"quick{i}", inputs={"seconds": 0}) for i in range(4)])
        )
    report = await run.wait()
    check_run(report, hook.events)
    [cancelled] = [e for e in hook.events if isinstance(e, NodeCancelled)]
    assert cancelled.ended == "abandoned"
    assert report.nodes["doomed"].ended == "abandoned"
    with trio.fail_after(30):
        while not end_file.exists() or not end_file.read_text():  # noqa: ASYNC110
            await trio.sleep(0.05)
    end_text, pid_text = end_file.read_text().split()
    abandoned_end, abandoned_pid = float(end_text), int(pid_text)  # it ran on to its end
    for i in range(4):
        quick = report.nodes[f"quick{i}"].outputs
        assert quick["pid"] != abandoned_pid, f"quick{i} was queued behind the abandoned task"
        assert quick["start"] < abandoned_end


def test_abandoned_work_still_counts_in_the_next_trio_run(dask_client: Any, tmp_path: Path) -> None:
    """The Trio run ends while an abandoned task runs on: the next run on the same
    client must still keep its quick tasks off that worker until the task ends."""
    executor = DaskExecutor(client=dask_client)
    coordinator = Coordinator(_registry(), executors={"dask": executor})
    end_file = tmp_path / "end"
    doomed = NodeSpec(
        "nap", id="doomed", timeout=0.5, inputs={"seconds": 4.0, "end_file": str(end_file)}
    )
    first = trio.run(coordinator.run, [doomed])
    assert first.nodes["doomed"].ended == "abandoned"
    quick = [NodeSpec("nap", id=f"quick{i}", inputs={"seconds": 0}) for i in range(4)]
    second = trio.run(coordinator.run, quick)
    deadline = time.monotonic() + 30
    while not end_file.exists() or not end_file.read_text():
        assert time.monotonic() < deadline, "the abandoned task never ended"
        time.sleep(0.05)
    end_text, pid_text = end_file.read_text().split()
    for i in range(4):
        outputs = second.nodes[f"quick{i}"].outputs
        if outputs["start"] < float(end_text):
            assert outputs["pid"] != int(pid_text), f"quick{i} was queued behind it"
    # Once it ended, its thread is free again: two naps at once take both workers.
    both = [NodeSpec("nap", id=f"both{i}", inputs={"seconds": 1.0}) for i in range(2)]
    third = trio.run(coordinator.run, both)
    assert len({third.nodes[f"both{i}"].outputs["pid"] for i in range(2)}) == 2


async def test_a_timed_out_task_is_abandoned_and_its_node_fails(dask_client: Any) -> None:
    coordinator = Coordinator(_registry(), executors={"dask": DaskExecutor(client=dask_client)})
    report = await coordinator.run(
        [NodeSpec("nap", id="slow", timeout=0.3, inputs={"seconds": 1.0})]
    )
    record = report.nodes["slow"]
    assert (record.status, record.ended) == (NodeStatus.FAILED, "abandoned")
    assert "timed out after 0.3s" in (record.error or "")


async def test_restart_on_cancel_really_stops_the_work(dask_client: Any, tmp_path: Path) -> None:
    executor = DaskExecutor(client=dask_client, restart_on_cancel=True)
    assert executor.ending == "killed"
    coordinator = Coordinator(_registry(), executors={"dask": executor})
    pid_file = tmp_path / "pid"
    async with coordinator.open_run(
        [NodeSpec("spin", id="spin", branch="main/x", inputs={"pid_file": str(pid_file)})]
    ) as run:
        with trio.fail_after(60):
            while not pid_file.exists() or not pid_file.read_text():  # noqa: ASYNC110
                await trio.sleep(0.05)
        pid = int(pid_file.read_text())
        await run.submit(CancelBranch("main/x"))
        after = await coordinator.run([NodeSpec("square", id="s", inputs={"x": 2})])
    report = await run.wait()
    assert report.nodes["spin"].ended == "killed"
    with trio.fail_after(60):
        while remote_actions.alive(pid):  # noqa: ASYNC110
            await trio.sleep(0.05)
    assert after.nodes["s"].outputs == 4  # the cluster works on after the restart
    await trio.to_thread.run_sync(lambda: dask_client.wait_for_workers(2, timeout=60))
    # Not run again on another worker: the scheduler forgot the task.
    pid_file.write_text("")
    with trio.fail_after(30):
        while await trio.to_thread.run_sync(dask_client.run_on_scheduler, _spin_tasks):  # noqa: ASYNC110
            await trio.sleep(0.05)
    assert pid_file.read_text() == ""


def _spin_tasks(dask_scheduler: Any) -> list[str]:
    return [str(key) for key in dask_scheduler.tasks if str(key).startswith("dagtrio-spin-")]


async def test_a_scheduler_that_does_not_answer_fails_its_nodes_in_bounded_time() -> None:
    executor = DaskExecutor(address="tcp://127.0.0.1:9", connect_timeout=1)
    coordinator = Coordinator(_registry(), executors={"dask": executor})
    with trio.fail_after(60):
        report = await coordinator.run([NodeSpec("square", id="s", inputs={"x": 2})])
    record = report.nodes["s"]
    assert record.status is NodeStatus.FAILED
    assert "no Dask scheduler answered at tcp://127.0.0.1:9 within 1s" in (record.error or "")


async def test_what_cannot_be_sent_fails_its_node_with_a_name(dask_client: Any) -> None:
    coordinator = Coordinator(_registry(), executors={"dask": DaskExecutor(client=dask_client)})
    report = await coordinator.run(
        [NodeSpec("square", id="locked", inputs={"x": 1, "lock": threading.Lock()})]
    )
    error = report.nodes["locked"].error or ""
    assert "input 'lock' cannot be sent to the Dask cluster" in error


def test_bad_dask_options_are_refused(dask_client: Any) -> None:
    with pytest.raises(ValueError, match="an address or a client, not both"):
        DaskExecutor("tcp://x:1", client=dask_client)
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client"):
        DaskExecutor(client="tcp://x:1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_workers must be an int >= 1"):
        DaskExecutor(n_workers=0)
    with pytest.raises(TypeError, match="restart_on_cancel must be True or False"):
        DaskExecutor(restart_on_cancel=1)  # type: ignore[arg-type]
