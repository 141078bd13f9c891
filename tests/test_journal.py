"""The SQLite journal: a run killed at any moment resumes without losing what was done."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journal_dag import RAN, coordinator, specs

import dagtrio
from dagtrio import (
    ActionRegistry,
    Coordinator,
    JournalError,
    NodeCtx,
    NodeSpec,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunResumed,
    SqliteJournal,
)
from dagtrio.testing import RecordingHook

HERE = Path(__file__).parent


def uninterrupted() -> dict[str, Any]:
    report = trio.run(lambda: coordinator(None).run(specs()))
    assert report.success
    return {node: (rec.status, rec.outputs) for node, rec in report.nodes.items()}


EXPECTED = uninterrupted()


def kill_after(journal: Path, run_id: str, done_lines: int) -> dict[str, int]:
    """Run journal_dag.py, SIGKILL it once it printed ``done_lines`` lines; what it printed."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "journal_dag.py"), str(journal), run_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    seen: dict[str, int] = {}
    assert process.stdout is not None
    for line in process.stdout:
        parts = line.split()
        if parts[0] == "done":
            seen[parts[1]] = int(parts[2])
        if len(seen) >= done_lines:
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    process.wait()
    return seen


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(done_lines=st.integers(min_value=0, max_value=len(EXPECTED) + 5))
def test_a_run_killed_at_any_moment_resumes_to_the_same_result(
    tmp_path: Path, done_lines: int
) -> None:
    path = tmp_path / f"crash-{done_lines}.db"
    seen = kill_after(path, "r", done_lines)
    journal = SqliteJournal(path)
    info = {run.run_id: run for run in journal.runs()}
    RAN.clear()
    if info["r"].status == "finished":
        report = journal.report("r")
    else:
        report = trio.run(lambda: coordinator(journal).resume("r"))
    assert report.success, report.error
    got = {node: (rec.status, rec.outputs) for node, rec in report.nodes.items()}
    assert {node: (status, out) for node, (status, out) in got.items()} == {
        node: (status, out) for node, (status, out) in EXPECTED.items()
    }
    # Reported done before the kill: kept, and not run again.
    for node, n in seen.items():
        assert report.nodes[node].outputs["n"] == n
        assert node not in RAN, f"{node} was reported done, then ran again"
    assert journal.runs()[0].status == "finished"


def registry() -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def ok(ctx: NodeCtx) -> int:
        await trio.lowlevel.checkpoint()
        return len(ctx.upstream)

    @reg.action()
    async def opaque(ctx: NodeCtx) -> object:
        return object()

    return reg


async def test_a_paused_branch_stays_paused_across_a_resume(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    coord = Coordinator(registry(), journal=journal)
    work = [
        NodeSpec("ok", id="a"),
        NodeSpec("ok", id="held", deps=["a"], branch="main/approval"),
        NodeSpec("ok", id="free", deps=["a"], branch="main/other"),
    ]
    with trio.CancelScope() as scope:
        async with coord.open_run(work, run_id="p") as run:
            await run.submit(PauseBranch("main/approval", reason="needs a person"))
            while not run.idle:  # noqa: ASYNC110 - idle is a property, not an event
                await trio.sleep(0.001)
            scope.cancel()  # the process "dies" here: the run stays resumable
    assert journal.runs()[0].status == "running"
    recorder = RecordingHook()
    resumed = Coordinator(registry(), [recorder], journal=journal)
    async with resumed.open_run(resume="p") as run:
        while not run.idle:  # noqa: ASYNC110 - idle is a property, not an event
            await trio.sleep(0.001)
        assert (
            run.graph.status("held") is NodeStatus.PENDING
            or run.graph.status("held") is NodeStatus.READY
        )
        await run.submit(ResumeBranch("main/approval"))
    report = run.report()
    assert report.success
    assert isinstance(recorder.events[0], RunResumed)
    assert report.nodes["free"].attempts == 1 and report.nodes["a"].attempts == 1


async def test_outputs_that_are_not_json_fail_the_node_naming_it(tmp_path: Path) -> None:
    coord = Coordinator(registry(), journal=SqliteJournal(tmp_path / "j.db"))
    report = await coord.run([NodeSpec("opaque", id="odd"), NodeSpec("ok", id="fine")])
    assert report.nodes["odd"].status is NodeStatus.FAILED
    assert "outputs cannot be stored in the journal" in (report.nodes["odd"].error or "")
    assert report.nodes["fine"].status is NodeStatus.SUCCEEDED


async def test_inputs_that_are_not_json_are_refused_before_the_run(tmp_path: Path) -> None:
    coord = Coordinator(registry(), journal=SqliteJournal(tmp_path / "j.db"))
    with pytest.raises(dagtrio.InvalidGraphError, match=r"'x'.*journal"):
        await coord.run([NodeSpec("ok", id="x", inputs={"when": object()})])


async def test_two_runs_in_one_journal_see_only_their_own_nodes(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    coord = Coordinator(registry(), journal=journal)
    async with trio.open_nursery() as nursery:
        for name in ("one", "two"):
            ids = [f"{name}-{i}" for i in range(30)]
            nursery.start_soon(
                lambda ids=ids, name=name: coord.run(
                    [NodeSpec("ok", id=i) for i in ids], run_id=name
                )
            )
    for name in ("one", "two"):
        report = journal.report(name)
        assert report.success
        assert set(report.nodes) == {f"{name}-{i}" for i in range(30)}


async def test_a_run_id_already_in_the_journal_is_refused(tmp_path: Path) -> None:
    coord = Coordinator(registry(), journal=SqliteJournal(tmp_path / "j.db"))
    await coord.run([NodeSpec("ok", id="a")], run_id="same")
    with pytest.raises(JournalError, match="already in the journal"):
        await coord.run([NodeSpec("ok", id="a")], run_id="same")
    again = await coord.resume("same")  # finished: its report, nothing run
    assert again.success and set(again.nodes) == {"a"}
    with pytest.raises(JournalError, match="no run 'other'"):
        await coord.resume("other")


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a dagtrio journal or is corrupt"):
        SqliteJournal(garbage).runs()
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(JournalError, match="not a dagtrio journal"):
        SqliteJournal(foreign).runs()
    newer = tmp_path / "newer.db"
    SqliteJournal(newer).runs()
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer dagtrio"):
        SqliteJournal(newer).runs()


async def test_a_full_disk_fails_the_run_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "tiny.db"
    journal = SqliteJournal(path)
    journal.runs()
    journal._connection.execute("PRAGMA max_page_count = 8")  # type: ignore[union-attr]
    coord = Coordinator(registry(), journal=journal)
    big = [NodeSpec("ok", id=f"n{i}" + "x" * 200) for i in range(400)]
    with trio.fail_after(10), pytest.raises(JournalError, match="full"):
        await coord.run(big, run_id="full")


async def test_a_journal_locked_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    SqliteJournal(path).runs()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        coord = Coordinator(registry(), journal=SqliteJournal(path, timeout=0.05))
        with trio.fail_after(10), pytest.raises(JournalError, match="locked"):
            await coord.run([NodeSpec("ok", id="a")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_prune_drops_old_finished_runs_only(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    coord = Coordinator(registry(), journal=journal)
    trio.run(lambda: coord.run([NodeSpec("ok", id="a")], run_id="old"))
    assert journal.prune(older_than=3600) == 0
    assert journal.prune(older_than=0) == 1
    assert journal.runs() == []


async def test_the_journal_grows_with_nodes_and_commands_not_events(tmp_path: Path) -> None:
    """Retries, starts and hook traffic add no records: one per batch, command, outcome."""
    reg = registry()
    failures = {"flaky": 0}

    @reg.action()
    async def flaky(ctx: NodeCtx) -> int:
        if ctx.attempt < 20:
            failures["flaky"] += 1
            raise RuntimeError("not yet")
        return ctx.attempt

    chatty = RecordingHook()
    journal = SqliteJournal(tmp_path / "j.db")
    coord = Coordinator(reg, [chatty], journal=journal)
    specs = [
        NodeSpec("flaky", id="f", try_count=20),
        NodeSpec("ok", id="a", deps=["f"]),
        NodeSpec("ok", id="b", deps=["f"]),
    ]
    async with coord.open_run(specs, run_id="r") as run:
        await run.submit(PauseBranch("main/elsewhere"))
        await run.submit(ResumeBranch("main/elsewhere"))
    assert run.report().success
    assert failures["flaky"] == 19
    assert len(chatty.events) > 25  # added, started and retrying events galore
    kinds = [kind for _, kind, _ in journal.stored_run("r").records]
    assert sorted(kinds) == [
        "add",
        "command",
        "command",
        "outcome",
        "outcome",
        "outcome",
        "started",
    ]


def mixed_registry() -> ActionRegistry:
    reg = registry()

    @reg.action()
    async def slow(ctx: NodeCtx) -> int:
        await trio.sleep(1 + ctx.attempt)
        if ctx.inputs.get("fail_until", 0) >= ctx.attempt:
            raise RuntimeError(f"attempt {ctx.attempt} failed")
        return ctx.attempt

    return reg


MIXED = [
    NodeSpec("slow", id="root"),
    NodeSpec("slow", id="bad", deps=["root"], inputs={"fail_until": 9}, try_count=2),
    NodeSpec("slow", id="under-bad", deps=["bad"]),
    NodeSpec("slow", id="deeper", deps=["under-bad"]),
    NodeSpec("slow", id="retried", deps=["root"], inputs={"fail_until": 1}, try_count=3),
    NodeSpec("slow", id="doomed", deps=["root"], branch="main/doomed"),
]


async def test_the_stored_report_equals_the_live_one(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    journal = SqliteJournal(tmp_path / "j.db")
    coord = Coordinator(mixed_registry(), journal=journal)
    async with coord.open_run(MIXED, run_id="r") as run:
        await trio.sleep(2.5)
        await run.submit(dagtrio.CancelBranch("main/doomed", reason="not needed"))
    live = run.report()
    assert live.nodes["deeper"].status is NodeStatus.SKIPPED
    assert live.nodes["doomed"].status is NodeStatus.CANCELLED
    assert live.nodes["retried"].attempts == 2
    stored = journal.report("r")
    assert dict(stored.nodes) == dict(live.nodes)
    assert stored == live


@pytest.mark.parametrize("how", ["cancel", "hook"])
async def test_a_run_that_stops_itself_is_recorded_as_finished(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """`run.cancel()` and a failing hook end the run: not a crash, nothing to resume."""

    async def failing(ctx: Any, event: Any) -> None:
        if isinstance(event, dagtrio.NodeStarted) and event.node.node == "bad":
            raise RuntimeError("hook gave up")

    journal = SqliteJournal(tmp_path / "j.db")
    hooks = [failing] if how == "hook" else []
    coord = Coordinator(mixed_registry(), hooks, journal=journal)
    with pytest.raises(RuntimeError, match="hook gave up") if how == "hook" else nullcontext():
        async with coord.open_run(MIXED, run_id="r") as run:
            if how == "cancel":
                await trio.sleep(2.5)
                run.cancel()
    (info,) = journal.runs()
    assert info.status == "finished"
    assert info.success is False
    assert info.error
    stored = journal.report("r")
    live = run.report()
    assert {n: r.status for n, r in stored.nodes.items()} == {
        n: r.status for n, r in live.nodes.items()
    }
    if how == "cancel":
        assert NodeStatus.CANCELLED in {r.status for r in stored.nodes.values()}
    assert await coord.resume("r") == stored  # finished: nothing to run again


@pytest.mark.parametrize("capacity", [0, 1, 100])
async def test_a_submitted_command_is_committed_when_submit_returns(
    tmp_path: Path, capacity: int
) -> None:
    """An approval acknowledged to a person must survive a crash right after."""
    path = tmp_path / "j.db"
    coord = Coordinator(
        mixed_registry(), [RecordingHook()], journal=SqliteJournal(path), event_capacity=capacity
    )
    reader = sqlite3.connect(path)
    try:
        async with coord.open_run(MIXED, run_id="r") as run:
            for branch in ("main/x", "main/y"):
                await run.submit(PauseBranch(branch, reason="approval"))
                rows = reader.execute(
                    "SELECT data FROM records WHERE run_id = 'r' AND kind = 'command'"
                ).fetchall()
                assert any(branch in data for (data,) in rows), f"{branch}: not committed"
            await run.shutdown(grace=0)
            stops = reader.execute(
                "SELECT COUNT(*) FROM records WHERE run_id = 'r' AND kind = 'stop'"
            ).fetchone()
            assert stops == (1,)
    finally:
        reader.close()


def test_a_run_going_on_in_another_process_is_not_resumed(tmp_path: Path) -> None:
    """The claim, not the owner column: see tests/test_adversarial.py for the process
    that holds a run and is then killed, and for a reused pid."""
    path = tmp_path / "j.db"
    kill_after(path, "r", 3)  # a resumable run, its process dead
    journal = SqliteJournal(path)
    claims = os.open(f"{os.path.realpath(path)}-claims", os.O_RDWR | os.O_CREAT)
    try:
        # Another process holding the claim: a child that locks every byte and waits.
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR);"
                " fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
                f"{os.path.realpath(path)}-claims",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(JournalError, match=r"run 'r' is going on in another process"):
            trio.run(lambda: coordinator(journal).resume("r"))
        assert journal.runs()[0].status == "running"  # refused: nothing changed
        holder.stdin.close()
        holder.wait()
        holder.stdout.close()
    finally:
        os.close(claims)
    report = trio.run(lambda: coordinator(journal).resume("r"))
    assert report.success


@given(
    count=st.integers(0, 700),
    limit=st.sampled_from([12, 100, 999, 32766]),
)
@settings(max_examples=60, deadline=None)
def test_records_go_in_whole_and_in_order_whatever_the_statement_limit(
    count: int, limit: int
) -> None:
    # A batch is written many rows per statement; whatever the number of rows and
    # however few parameters this SQLite lets a statement have, every row lands once.
    from dagtrio._durable.schema import SCHEMA, insert_records, statements

    db = sqlite3.connect(":memory:")
    for statement in statements(SCHEMA):
        db.execute(statement)
    db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    rows = [
        (i, "outcome", f"n{i}", "succeeded", 1, 0.1 * i, 0.2 * i, None, None, None, None)
        for i in range(1, count + 1)
    ]
    insert_records(db, "run", rows)
    got = db.execute(
        "SELECT seq, kind, node, status, attempts, started_at, finished_at, error, data,"
        " traceback, ended FROM records WHERE run_id = 'run' ORDER BY seq"
    ).fetchall()
    assert got == rows
