"""Bugs found by adversarial testing and by a new user (issue 10), one test or more each.

Each test names the behaviour it pins; the number in its docstring is the item of the
issue. Every one of them failed before its fix.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from helpers import Probe, work_registry
from journal_dag import RAN, coordinator

import dagtrio
from dagtrio import (
    ActionRegistry,
    AddNode,
    CancelBranch,
    Coordinator,
    CustomEvent,
    EmitEvent,
    EventHook,
    ExecutionEvent,
    HookContext,
    InvalidGraphError,
    InvalidSpecError,
    JournalError,
    NodeAdded,
    NodeCompleted,
    NodeCtx,
    NodeFailed,
    NodeSpec,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunReport,
    SetNodeInputs,
    SqliteJournal,
)
from dagtrio.testing import RecordingHook

HERE = Path(__file__).parent
REG = work_registry()
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _script(*args: str) -> list[str]:
    return [sys.executable, str(HERE / "journal_dag.py"), *args]


def _killed_midway(path: Path, run_id: str = "r", done: int = 5) -> None:
    """A resumable run in ``path``: journal_dag.py killed once ``done`` nodes finished."""
    process = subprocess.Popen(
        _script(str(path), run_id), stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        seen += line.startswith("done")
        if seen >= done:
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    process.wait()
    assert SqliteJournal(path).runs()[0].status == "running"


# ---------------------------------------------------------------- 1. two resumes at once


def test_a_resume_that_read_the_journal_before_another_finished_the_run_runs_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1. Resume B has read the journal when resume A (another process) runs; A must not
    be able to finish the run under B, and B must not re-run what A did."""
    path = tmp_path / "j.db"
    _killed_midway(path)
    other: list[str] = []
    real_replay = dagtrio._runtime.base.replay

    def stalled_replay(*args: Any, **kwargs: Any) -> Any:
        # B has read the journal; A, in another process, tries its resume now.
        if not other:
            done = subprocess.run(
                _script(str(path), "r", "resume"), capture_output=True, text=True, env=ENV
            )
            other.extend(done.stdout.splitlines() or [f"crashed {done.stderr}"])
        return real_replay(*args, **kwargs)

    monkeypatch.setattr(dagtrio._runtime.base, "replay", stalled_replay)
    RAN.clear()
    journal = SqliteJournal(path)
    outcome: RunReport | JournalError
    try:
        outcome = trio.run(lambda: coordinator(journal).resume("r"))
    except JournalError as exc:
        outcome = exc
    ran_there = {line.split()[1] for line in other if line.startswith("ran ")}
    assert not ran_there & set(RAN), f"ran in both processes: {ran_there & set(RAN)}"
    assert "UNIQUE" not in str(outcome) and not any("UNIQUE" in line for line in other)
    (info,) = journal.runs()
    assert info.status == "finished" and info.success, info
    assert other and other[0].startswith("refused"), other
    assert "another process" in other[0]
    assert isinstance(outcome, RunReport) and outcome.success


def test_a_live_pid_in_the_owner_column_does_not_block_a_resume(tmp_path: Path) -> None:
    """1. Ownership is an OS lock, not ``host:pid``: a reused pid blocks nothing."""
    path = tmp_path / "j.db"
    _killed_midway(path)
    import socket

    with sqlite3.connect(path) as db:  # a pid that is alive, but does not run the run
        db.execute("UPDATE runs SET owner = ? WHERE run_id = 'r'", (f"{socket.gethostname()}:1",))
    db.close()
    report = trio.run(lambda: coordinator(SqliteJournal(path)).resume("r"))
    assert report.success


def test_a_run_held_by_a_live_process_is_refused_and_free_once_it_is_killed(
    tmp_path: Path,
) -> None:
    """1. The kernel releases the claim when the owning process dies, however it dies."""
    path = tmp_path / "j.db"
    holder = subprocess.Popen(
        _script(str(path), "h", "hold"), stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        reg = ActionRegistry()

        @reg.action()
        async def forever(ctx: NodeCtx) -> str:
            return "done here"

        coord = Coordinator(reg, journal=SqliteJournal(path))
        with pytest.raises(JournalError, match="going on in another process"):
            trio.run(lambda: coord.resume("h"))
        assert SqliteJournal(path).runs()[0].status == "running"  # refused: unchanged
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    report = trio.run(lambda: coord.resume("h"))
    assert report.success and report.nodes["f"].outputs == "done here"


# ---------------------------------------------------------------- 2. lossy JSON


def _returning(value: Any) -> ActionRegistry:
    reg = ActionRegistry()

    @reg.action()
    async def give(ctx: NodeCtx) -> Any:
        return value

    return reg


@pytest.mark.parametrize(
    "outputs",
    [{1: "a", "1": "b"}, {1: "a"}, {"ok": [{None: 1}]}, {(1, 2): "pair"}, {True: 1}],
    ids=["clash", "int-key", "nested-none-key", "tuple-key", "bool-key"],
)
async def test_outputs_with_keys_json_would_change_fail_the_node(
    tmp_path: Path, outputs: Any
) -> None:
    """2. JSON turns keys into strings; a journal that did so would lose or change data."""
    journal = SqliteJournal(tmp_path / "j.db")
    report = await Coordinator(_returning(outputs), journal=journal).run(
        [NodeSpec("give", id="g")], run_id="r"
    )
    record = report.nodes["g"]
    assert record.status is NodeStatus.FAILED
    assert "outputs cannot be stored in the journal" in (record.error or "")
    assert "not a string" in (record.error or "")
    assert journal.report("r").nodes["g"].status is NodeStatus.FAILED


async def test_inputs_and_payloads_with_non_string_keys_are_refused_by_a_journal(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """2. The same for inputs (refused before the run) and commands (rejected)."""
    coord = Coordinator(REG, journal=SqliteJournal(tmp_path / "j.db"), app_data=Probe())
    with pytest.raises(InvalidGraphError, match=r"node 'x'.*journal.*not a string"):
        await coord.run([NodeSpec("noop", id="x", inputs={"table": {1: "one"}})])
    specs = [NodeSpec("work", id="a", inputs={"delay": 1}), NodeSpec("work", id="b", deps=["a"])]
    async with coord.open_run(specs) as run:
        with pytest.raises(dagtrio.CommandRejectedError, match="not a string"):
            await run.submit(EmitEvent(CustomEvent("odd", {2: "two"})))
        with pytest.raises(dagtrio.CommandRejectedError, match="not a string"):
            await run.submit(SetNodeInputs("b", {"t": {3: 3}}))
    assert run.report().success


def test_a_report_with_outputs_json_would_change_is_not_written_lossily() -> None:
    """2. ``RunReport.to_json`` promises a TypeError rather than a lossy document."""
    report = trio.run(lambda: Coordinator(_returning({1: "a", "1": "b"})).run([NodeSpec("give")]))
    with pytest.raises(TypeError, match="not a string"):
        report.to_json()


async def test_inputs_that_differ_only_in_key_types_have_different_cache_keys(
    tmp_path: Path,
) -> None:
    """2. ``{1: x}`` and ``{"1": x}`` are different inputs, so not one cache entry."""
    reg = ActionRegistry()

    @reg.action(cache=True)
    async def kind(ctx: NodeCtx) -> str:
        (key,) = ctx.inputs["table"]
        return type(key).__name__

    coord = Coordinator(reg, cache=SqliteJournal(tmp_path / "c.db"))
    first = await coord.run([NodeSpec("kind", id="k", inputs={"table": {1: "x"}})])
    second = await coord.run([NodeSpec("kind", id="k", inputs={"table": {"1": "x"}})])
    assert first.nodes["k"].outputs == "int"
    assert second.nodes["k"].outputs == "str"
    assert not second.nodes["k"].cached


# ---------------------------------------------------------------- 3. cancel in on_complete


class BlocksInOnComplete(EventHook):
    def __init__(self) -> None:
        self.entered = trio.Event()
        self.cancelled = False

    async def on_complete(self, ctx: HookContext, success: bool) -> None:
        self.entered.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled = True
            raise


@pytest.mark.parametrize("how", ["cancel", "shutdown0", "shutdown3"])
async def test_cancel_and_shutdown_end_a_run_whose_hook_blocks_in_on_complete(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """3. ``run.cancel()`` is immediate, also once every node is final."""
    hook = BlocksInOnComplete()
    with trio.fail_after(1000):
        async with Coordinator(REG, [hook]).open_run([NodeSpec("noop", id="a")]) as run:
            await hook.entered.wait()
            start = trio.current_time()
            if how == "cancel":
                run.cancel()
            else:
                await run.shutdown(0 if how == "shutdown0" else 3)
    assert hook.cancelled
    assert trio.current_time() - start == (3 if how == "shutdown3" else 0)
    assert run.finished
    assert run.report().nodes["a"].status is NodeStatus.SUCCEEDED


# ---------------------------------------------------------------- 5. inputs are immutable


async def test_a_hook_cannot_rewrite_inputs_without_a_command() -> None:
    """5. Inputs are deep read-only wherever anyone else can reach them."""
    seen: list[Any] = []
    reg = ActionRegistry()

    @reg.action()
    async def echo(ctx: NodeCtx) -> Any:
        seen.append(ctx.inputs)
        with pytest.raises(TypeError, match="read-only"):
            ctx.inputs["tags"].append("from the action")  # type: ignore[attr-defined]
        return dict(ctx.inputs)

    class Meddler(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
            if isinstance(event, NodeAdded):
                inputs: Any = event.spec.inputs
                for attempt in (
                    lambda: inputs.__setitem__("n", 2),
                    lambda: inputs["tags"].append("x"),
                    lambda: inputs["deep"]["k"].update(v=0),
                    lambda: ctx.graph.spec(event.node.node).inputs.clear(),  # type: ignore[attr-defined]
                    lambda: inputs.pop("n"),
                    lambda: inputs["tags"].extend("y"),
                ):
                    with pytest.raises(TypeError, match="read-only"):
                        attempt()

    mine = {"n": 1, "tags": ["a"], "deep": {"k": {"v": 1}}}
    spec = NodeSpec("echo", id="e", inputs=mine)
    mine["n"] = 99
    mine["tags"].append("late")  # type: ignore[attr-defined]
    mine["deep"]["k"]["v"] = 99  # type: ignore[index]
    report = await Coordinator(reg, [Meddler()]).run([spec])
    assert report.nodes["e"].outputs == {"n": 1, "tags": ["a"], "deep": {"k": {"v": 1}}}
    assert seen[0] == {"n": 1, "tags": ["a"], "deep": {"k": {"v": 1}}}


def test_frozen_inputs_still_behave_like_dicts_and_lists() -> None:
    """5. Read-only, yet ``==``, ``isinstance``, JSON, pickling and copies work."""
    import copy
    import pickle

    spec = NodeSpec("a", inputs={"l": [1, {"x": (2, [3])}], "s": {1, 2}})
    inputs: Any = spec.inputs
    assert inputs == {"l": [1, {"x": (2, [3])}], "s": {1, 2}}
    assert isinstance(inputs, dict) and isinstance(inputs["l"], list)
    assert json.loads(json.dumps({"l": inputs["l"]})) == {"l": [1, {"x": [2, [3]]}]}
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert copy.deepcopy(spec) == spec
    mutable = dict(inputs)
    mutable["new"] = 1
    assert "new" not in spec.inputs
    assert inputs["l"] + [4] == [1, {"x": (2, [3])}, 4]
    assert isinstance(inputs["s"], frozenset)
    assert dagtrio.converter.structure(dagtrio.converter.unstructure(spec), NodeSpec) == spec


# ---------------------------------------------------------------- 6. automatic ids


async def test_automatic_ids_after_a_resume_are_those_of_an_uninterrupted_run(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """6. The id counter is part of what the journal restores."""

    def registry(dies: trio.CancelScope | None) -> ActionRegistry:
        reg = ActionRegistry()

        @reg.action()
        async def work(ctx: NodeCtx) -> str:
            if ctx.node_id == "a" and dies is not None:
                dies.cancel()  # the process dies while a runs
                await trio.sleep_forever()
            await trio.sleep(1)
            return ctx.node_id

        @reg.action()
        async def other(ctx: NodeCtx) -> str:
            return ctx.node_id

        return reg

    async def grow(ctx: HookContext, event: ExecutionEvent) -> Any:
        # No re-delivery involved: a completes only after the resume.
        if isinstance(event, NodeCompleted) and event.node.node == "a":
            return AddNode(NodeSpec("other", deps=["a"]))
        return None

    initial = [NodeSpec("work", id="a"), NodeSpec("work"), NodeSpec("work")]
    whole = await Coordinator(registry(None), [grow]).run(initial)
    path = tmp_path / "j.db"
    with trio.CancelScope() as scope:
        await Coordinator(registry(scope), [grow], journal=SqliteJournal(path)).run(
            initial, run_id="r"
        )
    resumed = await Coordinator(registry(None), [grow], journal=SqliteJournal(path)).resume("r")
    assert sorted(whole.nodes) == ["a", "other-3", "work-1", "work-2"]
    assert sorted(resumed.nodes) == sorted(whole.nodes)


# ---------------------------------------------------------------- 7. deps given as a string


@pytest.mark.parametrize("deps", ["fetch", "ab", b"ab"])
def test_deps_given_as_a_string_is_an_error_naming_the_node(deps: Any) -> None:
    """7. A string is not a list of one-character ids."""
    with pytest.raises(InvalidSpecError, match=r"node 'n'.*deps.*string"):
        NodeSpec("work", id="n", deps=deps)


def test_deps_that_are_not_iterable_is_an_error_naming_the_node() -> None:
    with pytest.raises(InvalidSpecError, match=r"node 'n'.*deps.*int"):
        NodeSpec("work", id="n", deps=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- 8. Cancelled by hand


async def test_an_action_raising_cancelled_by_hand_fails_that_node_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """8. A mis-re-raised Cancelled is that attempt's failure, not its crew's end."""
    reg = work_registry()

    @reg.action()
    async def reraises(ctx: NodeCtx) -> None:
        saved: BaseException | None = None
        with trio.CancelScope() as inner:
            inner.cancel()
            try:
                await trio.sleep(1)
            except trio.Cancelled as exc:
                saved = exc
        assert saved is not None
        raise saved

    specs = [
        NodeSpec("reraises", id="bad", try_count=2),
        NodeSpec("work", id="sibling", inputs={"delay": 5}),
        NodeSpec("work", id="after", deps=["sibling"]),
    ]
    with trio.fail_after(100):
        report = await Coordinator(reg, app_data=Probe()).run(specs)
    assert report.nodes["bad"].status is NodeStatus.FAILED
    assert report.nodes["bad"].attempts == 2
    assert "Cancelled" in (report.nodes["bad"].error or "")
    assert report.nodes["sibling"].status is NodeStatus.SUCCEEDED
    assert report.nodes["after"].status is NodeStatus.SUCCEEDED


# ---------------------------------------------------------------- 9. report only reads


@pytest.mark.parametrize("kind", ["no tables", "empty file"])
def test_dagtrio_report_on_a_sqlite_file_that_is_not_a_journal_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """9. ``dagtrio report`` only reads: no schema, no WAL, just an error."""
    from dagtrio.cli import main

    path = tmp_path / "other.db"
    if kind == "no tables":
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 7")
        db.commit()
        db.close()
    else:
        path.write_bytes(b"")
    before = path.read_bytes()
    assert main(["report", str(path)]) == 1
    assert "not a dagtrio journal" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_read_only_journal_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    writer = SqliteJournal(path)
    trio.run(lambda: Coordinator(REG, journal=writer).run([NodeSpec("noop")], run_id="r"))
    writer.close()
    before = path.read_bytes()
    journal = SqliteJournal(path, read_only=True)
    assert [info.run_id for info in journal.runs()] == ["r"]
    assert journal.report("r").success
    with pytest.raises(ValueError, match="read-only"):
        Coordinator(REG, journal=journal)
    with pytest.raises(ValueError, match="read-only"):
        Coordinator(REG, cache=journal)
    with pytest.raises(JournalError, match="read-only"):
        journal.prune(older_than=0)
    journal.close()
    assert path.read_bytes() == before
    missing = SqliteJournal(tmp_path / "missing.db", read_only=True)
    with pytest.raises(JournalError, match="no such file"):
        missing.runs()
    assert not (tmp_path / "missing.db").exists()


# ---------------------------------------------------------------- 10. replay errors


def test_a_damaged_record_is_an_error_naming_the_file(tmp_path: Path) -> None:
    """10. The run id alone does not say which file to look at."""
    path = tmp_path / "damaged.db"
    _killed_midway(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET status = 'weird' WHERE kind = 'outcome'")
    db.close()
    journal = SqliteJournal(path)
    with pytest.raises(JournalError, match=rf"{path}.*run 'r'.*record \d+ \(outcome\)"):
        journal.report("r")
    with pytest.raises(JournalError, match=rf"{path}.*run 'r'.*record \d+ \(outcome\)"):
        trio.run(lambda: coordinator(journal).resume("r"))
    assert journal.runs()[0].status == "running"  # refused: still resumable


# ---------------------------------------------------------------- 11. sync hook methods


async def test_an_event_hook_with_sync_methods_works() -> None:
    """11. Sync ``handle`` / ``on_start`` / ``on_complete`` are accepted, as sync
    function hooks are."""

    class Sync(EventHook):
        def __init__(self) -> None:
            self.completed: list[bool] = []

        def on_start(self, ctx: HookContext) -> Any:  # type: ignore[override]
            return [AddNode(NodeSpec("noop", id="seed"))]

        def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:  # type: ignore[override]
            if isinstance(event, NodeCompleted) and event.node.node == "seed":
                return AddNode(NodeSpec("noop", id="grown", deps=["seed"]))
            return None

        def on_complete(self, ctx: HookContext, success: bool) -> None:  # type: ignore[override]
            self.completed.append(success)

    hook = Sync()
    report = await Coordinator(REG, [hook]).run([])
    assert sorted(report.nodes) == ["grown", "seed"]
    assert report.success and hook.completed == [True]


# ---------------------------------------------------------------- 12. body and run errors


class FailsAtStart(EventHook):
    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> None:
        if isinstance(event, dagtrio.NodeStarted):
            raise RuntimeError("hook gave up")


async def test_a_hook_that_fails_the_run_cancels_the_open_run_body_promptly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """12. The body would otherwise go on with a run that is over."""
    after_sleep = False
    start = trio.current_time()
    with pytest.raises(RuntimeError, match="hook gave up"):  # noqa: PT012 - the body is the point
        async with Coordinator(REG, [FailsAtStart()], app_data=Probe()).open_run(
            [NodeSpec("work", id="a", inputs={"delay": 1})]
        ):
            await trio.sleep(5)
            after_sleep = True
    assert not after_sleep
    assert trio.current_time() - start < 5


async def test_when_the_body_and_the_run_both_fail_the_caller_gets_both(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """12. Neither error is silently dropped."""
    with pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="hook gave up"),
        pytest.RaisesExc(ValueError, match="body broke too"),
    ):
        async with Coordinator(REG, [FailsAtStart()], app_data=Probe()).open_run(
            [NodeSpec("work", id="a", inputs={"delay": 1})]
        ):
            try:
                await trio.sleep(5)
            finally:
                raise ValueError("body broke too")


async def test_a_body_error_alone_still_propagates_as_it_is() -> None:
    with pytest.raises(ValueError, match="only the body"):
        async with Coordinator(REG).open_run([NodeSpec("noop")]):
            raise ValueError("only the body")


# ---------------------------------------------------------------- 13. tracebacks


async def test_a_failed_action_keeps_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """13. The report, the event and the log keep where it failed, not just the message."""
    reg = ActionRegistry()

    @reg.action()
    async def lookup(ctx: NodeCtx) -> Any:
        return {}["missing"]

    @reg.action()
    async def refuse(ctx: NodeCtx) -> Any:
        return dagtrio.NodeOutput.failed("said no")

    hook = RecordingHook()
    journal = SqliteJournal(tmp_path / "j.db")
    with caplog.at_level(logging.INFO, logger="dagtrio"):
        report = await Coordinator(reg, [hook], journal=journal).run(
            [NodeSpec("lookup", id="l", try_count=2), NodeSpec("refuse", id="r")], run_id="x"
        )
    record = report.nodes["l"]
    assert record.error == "KeyError: 'missing'"
    assert record.traceback is not None
    assert record.traceback.startswith("Traceback (most recent call last)")
    assert 'return {}["missing"]' in record.traceback and "in lookup" in record.traceback
    (failed,) = [e for e in hook.events if isinstance(e, NodeFailed) and e.node.node == "l"]
    assert failed.traceback == record.traceback
    assert report.nodes["r"].traceback is None
    assert journal.report("x").nodes["l"].traceback == record.traceback
    assert RunReport.from_json(report.to_json()).nodes["l"].traceback == record.traceback
    logged = [r for r in caplog.records if r.name == "dagtrio" and "'l'" in r.getMessage()]
    assert len(logged) == 2  # one per failed attempt
    assert all(r.exc_info or "KeyError" in r.getMessage() for r in logged)
    assert logged[-1].levelno == logging.ERROR


# ---------------------------------------------------------------- 15. odds and ends


async def test_resuming_a_finished_run_returns_its_report_and_runs_nothing(
    tmp_path: Path,
) -> None:
    """15. A supervisor may call resume unconditionally after a restart."""
    journal = SqliteJournal(tmp_path / "j.db")
    probe = Probe()
    coord = Coordinator(REG, [hook := RecordingHook()], journal=journal, app_data=probe)
    first = await coord.run([NodeSpec("work", id="a"), NodeSpec("work", id="b")], run_id="r")
    probe.attempts.clear()
    hook.events.clear()
    again = await coord.resume("r")
    assert again == journal.report("r")
    assert {n: r.outputs for n, r in again.nodes.items()} == {
        n: r.outputs for n, r in first.nodes.items()
    }
    assert probe.attempts == {} and hook.events == [] and hook.started == 1
    assert journal.runs()[0].status == "finished"


async def test_a_keyboard_interrupt_in_an_action_reaches_the_caller_as_one() -> None:
    """15. Not three exception groups deep."""
    reg = ActionRegistry()

    @reg.action()
    async def interrupt(ctx: NodeCtx) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        await Coordinator(reg).run([NodeSpec("interrupt"), NodeSpec("interrupt")])
    assert type(caught.value) is KeyboardInterrupt


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("synchronous", None),
        ("synchronous", 2),
        ("synchronous", "sometimes"),
        ("timeout", True),
        ("timeout", math.nan),
        ("timeout", -1),
        ("timeout", "5"),
    ],
)
def test_bad_journal_options_are_clear_errors(option: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=option):
        SqliteJournal("never-created.db", **{option: value})
    assert not Path("never-created.db").exists()


# ---------------------------------------------------------------- statistics in O(1)


async def test_statistics_count_ready_and_held_nodes(autojump_clock: Any) -> None:
    """``run.statistics()`` keeps counts instead of walking the queues."""
    specs = [
        NodeSpec("work", id=f"{b}{i}", branch=f"main/{b}", inputs={"delay": 10})
        for b in "xyz"
        for i in range(3)
    ]

    class Seed(EventHook):
        async def on_start(self, ctx: HookContext) -> Any:
            return [PauseBranch("main/y"), dagtrio.AddNodes(specs)]

    coord = Coordinator(REG, [Seed()], max_parallel=1, app_data=Probe())
    async with coord.open_run([]) as run:
        await trio.sleep(1)
        stats = run.statistics()
        assert (stats.running, stats.ready, stats.paused, stats.unfinished) == (1, 5, 3, 9)
        await run.submit(CancelBranch("main/z"))
        stats = run.statistics()
        assert (stats.running, stats.ready, stats.paused, stats.unfinished) == (1, 2, 3, 6)
        await run.submit(ResumeBranch("main/y"))
        stats = run.statistics()
        assert (stats.running, stats.ready, stats.paused, stats.unfinished) == (1, 5, 0, 6)
        await run.submit(PauseBranch("main"))
        await trio.sleep(10)
        stats = run.statistics()
        assert (stats.running, stats.ready, stats.paused, stats.unfinished) == (0, 0, 5, 5)
        await run.submit(ResumeBranch("main"))
    assert run.report().success is False  # main/z was cancelled
