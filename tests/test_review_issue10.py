"""Review of the fixes for issue 10: what adversarial testing of the change found.

Nine tests here pinned bugs of the first version of the fixes (now fixed); the others
pin behaviour that held up under attack.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from helpers import Probe, run_mock, work_registry
from hypothesis import given, settings
from hypothesis import strategies as st

import dagtrio
from dagtrio import (
    AddNodes,
    BranchCancelled,
    BranchPaused,
    BranchResumed,
    CancelBranch,
    CommandRejectedError,
    Coordinator,
    EventHook,
    ExecutionEvent,
    NodeAdded,
    NodeCancelled,
    NodeCompleted,
    NodeSpec,
    NodeStarted,
    NodeStatus,
    PauseBranch,
    ResumeBranch,
    RunFinishedError,
    SetNodeInputs,
    SqliteJournal,
)
from dagtrio._durable.claims import LIVE as _LIVE

REG = work_registry()

# ---------------------------------------------------------------- branch index vs a model

BRANCHES = ["main", "main/a", "main/a/x", "main/b", "main/b/y", "c", "c/d"]


def _below(branch: str, root: str) -> bool:
    return branch == root or branch.startswith(root + "/")


@st.composite
def _node(draw: st.DrawFn, node_id: str, known: list[str]) -> NodeSpec:
    deps = draw(st.lists(st.sampled_from(known), max_size=2, unique=True)) if known else []
    return NodeSpec(
        "work",
        id=node_id,
        deps=deps,
        branch=draw(st.sampled_from([None, *BRANCHES])),
        inputs={"delay": draw(st.sampled_from([0, 0, 1, 3])), "fail": draw(st.integers(0, 2))},
        try_count=draw(st.integers(1, 3)),
        retry_delay=draw(st.sampled_from([0.0, 0.0, 1.5])),
    )


@st.composite
def _branch_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    known: list[str] = []
    initial = []
    for i in range(draw(st.integers(0, 6))):
        initial.append(draw(_node(f"n{i}", known)))
        known.append(f"n{i}")
    steps: list[tuple[float, str, Any]] = []
    for s in range(draw(st.integers(1, 12))):
        wait = draw(st.sampled_from([0, 0, 0.5, 1, 2]))
        kind = draw(st.sampled_from(["pause", "pause", "resume", "resume", "cancel", "add"]))
        if kind == "add":
            batch = []
            for k in range(draw(st.integers(1, 3))):
                batch.append(draw(_node(f"s{s}.{k}", known)))
                known.append(f"s{s}.{k}")
            steps.append((wait, kind, batch))
        else:
            steps.append((wait, kind, draw(st.sampled_from(BRANCHES))))
    return {
        "initial": initial,
        "steps": steps,
        "hook_steers": draw(st.booleans()),
        "shutdown": draw(st.sampled_from([None, None, 0.0, 1.0])),
        "max_parallel": draw(st.integers(1, 3)),
        "event_capacity": draw(st.integers(0, 2)),
    }


#: the steps of a generated scenario, by name
_COMMANDS: dict[str, Any] = {
    "pause": PauseBranch,
    "resume": ResumeBranch,
    "cancel": CancelBranch,
    "add": AddNodes,
}


class _Watch(EventHook):
    """Records every event; optionally pauses/resumes a branch in answer to events, so
    that branch commands also land in the same scheduler batch as starts and ends."""

    def __init__(self, steer: bool) -> None:
        self.events: list[ExecutionEvent] = []
        self.steer = steer
        self.count = 0

    async def handle(self, ctx: Any, event: ExecutionEvent) -> Any:
        self.events.append(event)
        if self.steer and isinstance(event, NodeCompleted):
            self.count += 1
            branch = BRANCHES[self.count % len(BRANCHES)]
            if branch in ctx.graph.cancelled_branches:
                return None
            return PauseBranch(branch) if self.count % 2 else ResumeBranch(branch)
        return None


@settings(max_examples=300)
@given(_branch_scenarios())
def test_branch_commands_keep_statistics_and_schedule_right(scenario: dict[str, Any]) -> None:
    """Pause/resume/cancel/add/shutdown in any order, with retries and delays: no node
    starts in a paused or cancelled branch, none starts twice at once, the run ends with
    every node final (never early, never hanging), and ready + paused always equals the
    READY nodes."""
    probe = Probe()
    watch = _Watch(scenario["hook_steers"])
    coord = Coordinator(
        REG,
        [watch],
        max_parallel=scenario["max_parallel"],
        event_capacity=scenario["event_capacity"],
        app_data=probe,
    )
    drift: list[str] = []

    def check_stats(run: Any, where: str) -> None:
        stats = run.statistics()
        counts = run.graph.counts()
        ready = counts.get(NodeStatus.READY, 0)
        unfinished = sum(n for s, n in counts.items() if not s.is_final)
        if stats.ready < 0 or stats.paused < 0 or stats.ready + stats.paused != ready:
            drift.append(f"{where}: ready={stats.ready} paused={stats.paused}, READY={ready}")
        if stats.unfinished != unfinished:
            drift.append(f"{where}: unfinished={stats.unfinished}, counted {unfinished}")
        if stats.delayed < 0 or stats.running < 0:
            drift.append(f"{where}: {stats}")

    async def main() -> Any:
        async with coord.open_run(scenario["initial"]) as run:
            for i, (wait, kind, arg) in enumerate(scenario["steps"]):
                if wait:
                    await trio.sleep(wait)
                command = _COMMANDS[kind](arg)
                with suppress(CommandRejectedError, RunFinishedError):
                    await run.submit(command)
                if not run.finished:
                    check_stats(run, f"step {i} {kind} {arg}")
            if scenario["shutdown"] is not None:
                await run.shutdown(scenario["shutdown"])
            else:
                # Lift every pause until the run ends (a steering hook may still have
                # a pause on its way).
                watch.steer = False
                while not run.finished:
                    for root in ("main", "c"):
                        if any(_below(root, b) for b in run.graph.cancelled_branches):
                            continue
                        with suppress(CommandRejectedError, RunFinishedError):
                            await run.submit(ResumeBranch(root))
                    await trio.sleep(7)
        report = await run.wait()
        stats = run.statistics()
        if stats.ready or stats.paused or stats.unfinished:
            drift.append(f"at the end: {stats}")
        return report

    report = run_mock(main)
    assert probe.violations == []
    assert drift == []
    assert probe.peak <= scenario["max_parallel"]
    # Every node final; none ended because the run ended early.
    for node_id, record in report.nodes.items():
        assert record.status.is_final, (node_id, record.status)
        assert "run ended before" not in (record.error or ""), (node_id, record.error)
    # Replay the event order against a model of pauses and cancellations.
    branch_of: dict[str, str] = {}
    paused: set[str] = set()
    cancelled: set[str] = set()
    starts: dict[str, int] = {}
    for event in watch.events:
        if isinstance(event, NodeAdded):
            branch_of[event.node.node] = event.branch
        elif isinstance(event, BranchPaused):
            paused.add(event.branch)
        elif isinstance(event, BranchResumed):
            paused = {b for b in paused if not _below(b, event.branch)}
        elif isinstance(event, BranchCancelled):
            cancelled.add(event.branch)
            paused = {b for b in paused if not _below(b, event.branch)}
        elif isinstance(event, NodeStarted):
            node = event.node.node
            branch = branch_of[node]
            assert not any(_below(branch, p) for p in paused), f"{node} started while paused"
            assert not any(_below(branch, c) for c in cancelled), f"{node} started cancelled"
            starts[node] = starts.get(node, 0) + 1
    for node_id, record in report.nodes.items():
        branch = record.branch
        if any(_below(branch, c) for c in cancelled) and record.status is not NodeStatus.SKIPPED:
            # Unless it ended before its branch was cancelled.
            assert record.status is NodeStatus.CANCELLED or starts.get(node_id), (
                node_id,
                record.status,
            )
        assert record.attempts == starts.get(node_id, 0), node_id
    if scenario["shutdown"] is None:
        # Only a CancelBranch cancels: never a node outside the branches it named.
        for node_id, record in report.nodes.items():
            if record.status is NodeStatus.CANCELLED:
                assert any(_below(record.branch, c) for c in cancelled), (node_id, record)
    if scenario["shutdown"] is None and not cancelled:
        # Nothing stopped anything: each node ends as its plan says.
        for record in report.nodes.values():
            assert record.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED)
    cancels = [e for e in watch.events if isinstance(e, NodeCancelled)]
    assert len({e.node.node for e in cancels}) == len(cancels)


# ---------------------------------------------------------------- submit and cancellation


async def test_submit_in_a_cancelled_scope_is_a_cancellation_point(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with Coordinator(REG, app_data=Probe()).open_run(
        [NodeSpec("work", id="a", inputs={"delay": 10})]
    ) as run:
        applied = 0
        with trio.CancelScope() as scope:
            scope.cancel()
            for _ in range(100):
                await run.submit(PauseBranch("x"))
                applied += 1
        assert applied == 0, f"{applied} submits went through a cancelled scope"


class _FailsAtStart(EventHook):
    async def handle(self, ctx: Any, event: ExecutionEvent) -> None:
        if isinstance(event, NodeStarted):
            raise RuntimeError("hook gave up")


async def test_a_submitting_body_is_cancelled_when_a_hook_fails_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(RuntimeError, match="hook gave up"):  # noqa: PT012
        async with Coordinator(REG, [_FailsAtStart()], app_data=Probe()).open_run(
            [NodeSpec("work", id="a", inputs={"delay": 1}), NodeSpec("work", id="b", deps=["a"])]
        ) as run:
            n = 0
            while True:  # e.g. a UI forwarding a person's edits
                await run.submit(SetNodeInputs("b", {"delay": n % 2}))
                n += 1


# ---------------------------------------------------------------- cancel/shutdown vs on_complete


class _BlocksInOnComplete(EventHook):
    def __init__(self) -> None:
        self.cancelled = False

    async def on_complete(self, ctx: Any, success: bool) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self.cancelled = True
            raise


@pytest.mark.parametrize("how", ["cancel", "shutdown0"])
async def test_cancel_while_nodes_run_also_ends_a_blocking_on_complete(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    hook = _BlocksInOnComplete()
    with trio.fail_after(1000):
        async with Coordinator(REG, [hook], app_data=Probe()).open_run(
            [NodeSpec("work", id="a", inputs={"delay": 10})]
        ) as run:
            await trio.sleep(1)
            if how == "cancel":
                run.cancel()
            else:
                await run.shutdown(0)
    assert hook.cancelled


# ---------------------------------------------------------------- the journal's claims


async def test_a_claim_is_released_when_the_working_directory_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    journal = SqliteJournal("j.db")
    coord = Coordinator(REG, journal=journal, app_data=Probe())
    try:
        async with coord.open_run([NodeSpec("work", id="n")], run_id="r"):
            os.chdir(tmp_path / "b")  # the application moves on meanwhile
        os.chdir(tmp_path / "a")
        report = await coord.resume("r")  # finished: its stored report
        assert report.success
    finally:
        os.chdir(tmp_path / "a")
        journal._release("r")  # leave no claim behind for the other tests
        assert (str(tmp_path / "a" / "j.db"), "r") not in _LIVE


_LOCK_ALL = (
    "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
    " fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()"
)


def test_resume_of_a_finished_run_needs_no_claim(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    coord = Coordinator(REG, journal=journal, app_data=Probe())
    trio.run(lambda: coord.run([NodeSpec("work", id="n")], run_id="r"))
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_ALL, f"{os.path.realpath(path)}-claims"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "locked\n"
        report = trio.run(lambda: coord.resume("r"))
        assert report.success
    finally:
        holder.kill()
        holder.wait()
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                stream.close()


_HOLD_WRITE_LOCK = (
    "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
    " c.execute('BEGIN IMMEDIATE'); print('locked', flush=True);"
    " time.sleep(float(sys.argv[2])); c.execute('COMMIT')"
)


def test_a_busy_journal_does_not_freeze_runs_on_another_journal(tmp_path: Path) -> None:
    busy, other = tmp_path / "busy.db", tmp_path / "other.db"
    trio.run(lambda: Coordinator(REG, journal=SqliteJournal(busy), app_data=Probe()).run([]))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(busy), "2.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    gaps: list[float] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def heartbeat() -> None:
                while True:
                    before = time.monotonic()
                    await trio.sleep(0.01)
                    gaps.append(time.monotonic() - before)

            nursery.start_soon(heartbeat)
            quick = Coordinator(REG, journal=SqliteJournal(other), app_data=Probe())
            slow = Coordinator(REG, journal=SqliteJournal(busy), app_data=Probe())
            async with quick.open_run([NodeSpec("work", id="a", inputs={"delay": 0.3})]):
                # Another run starts on the busy journal: its _begin waits in a thread.
                nursery.start_soon(slow.run, [NodeSpec("work", id="b")])
            # The quick run ended (its claim released in this thread) while that waited.
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        holder.wait()
        holder.stdout.close()
    assert max(gaps) < 0.5, f"the event loop froze for {max(gaps):.2f}s"


# ---------------------------------------------------------------- read-only inputs, outputs


async def test_a_hook_cannot_rewrite_what_dependents_receive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    reg = dagtrio.ActionRegistry()
    seen: list[Any] = []

    @reg.action()
    async def make(ctx: dagtrio.NodeCtx) -> Any:
        return {"items": [1]}

    @reg.action()
    async def use(ctx: dagtrio.NodeCtx) -> Any:
        await trio.sleep(1)
        seen.append(ctx.upstream["a"])
        return None

    class Meddler(EventHook):
        async def handle(self, ctx: Any, event: ExecutionEvent) -> None:
            if isinstance(event, NodeCompleted) and event.node.node == "a":
                with suppress(TypeError):  # read-only: what it should be
                    event.outcome.outputs["items"].append("from a hook")

    await Coordinator(reg, [Meddler()]).run(
        [NodeSpec("make", id="a"), NodeSpec("use", id="b", deps=["a"])]
    )
    assert seen == [{"items": [1]}]


@pytest.mark.parametrize("how", ["dict-init", "list-init", "namedtuple"])
def test_node_inputs_cannot_be_rewritten_at_all(how: str) -> None:
    from collections import namedtuple

    Pair = namedtuple("Pair", "left right")
    spec = NodeSpec("a", inputs={"l": [1], "d": {"k": 1}, "p": Pair([1], 2)})
    inputs: Any = spec.inputs
    mutate = {
        "dict-init": lambda: inputs["d"].__init__({"k": 2}),
        "list-init": lambda: inputs["l"].__init__([2]),
        "namedtuple": lambda: inputs["p"].left.append(2),
    }[how]
    # Refused, or (a second __init__, which cannot be told from the constructor's) a no-op.
    with suppress(TypeError):
        mutate()
    assert spec.inputs == {"l": [1], "d": {"k": 1}, "p": Pair([1], 2)}
    assert dagtrio._model.frozen.EMPTY == {}


# ---------------------------------------------------------------- sound under attack (pins)


@pytest.mark.parametrize("journaled", [False, True])
@pytest.mark.parametrize("capacity", [0, 1, 100])
async def test_many_submitters_all_hear_back_when_the_run_is_torn_down(
    tmp_path: Path, journaled: bool, capacity: int
) -> None:
    """Submitters outside the run (blocked on a full inbox, or waiting for their answer
    or its commit) never hang when the run is cancelled from outside; each hears back.
    Real clock: an autojumping one leaps over the journal's worker threads."""
    journal = SqliteJournal(tmp_path / "j.db") if journaled else None
    coord = Coordinator(
        REG, [_Watch(False)], journal=journal, command_capacity=capacity, app_data=Probe()
    )
    outcomes: list[str] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as outside:
            with trio.CancelScope() as run_scope:
                async with coord.open_run([NodeSpec("work", id="a", inputs={"delay": 1e6})]) as run:
                    busy = trio.Event()
                    applied = 0

                    async def submitter(i: int) -> None:
                        nonlocal applied
                        try:
                            while True:
                                await run.submit(PauseBranch(f"main/b{i}"))
                                await run.submit(ResumeBranch(f"main/b{i}"))
                                applied += 2
                                if applied >= 400:
                                    busy.set()
                        except RunFinishedError:
                            outcomes.append("finished")

                    for i in range(20):
                        outside.start_soon(submitter, i)
                    # Not a sleep: busy submitters leave the MockClock no idle moment.
                    await busy.wait()
                    run_scope.cancel()
    assert outcomes == ["finished"] * 20


def _run_journaled(main: Any) -> Any:
    """``trio.run`` on a MockClock at 200x real time: an autojumping one would leap
    over the journal's worker threads (to the next deadline, a timeout's)."""

    async def guarded() -> Any:
        with trio.fail_after(3000):
            return await main()

    return trio.run(guarded, clock=trio.testing.MockClock(rate=200))


def test_a_run_whose_replay_fails_keeps_no_claim(tmp_path: Path) -> None:
    """A resume that claimed the run and then could not rebuild it lets go of the
    claim: in this process and at the OS level; fixed, the run resumes."""
    import sqlite3

    from dagtrio._durable.claims import Claims as _Claims

    path = tmp_path / "j.db"
    specs = [NodeSpec("work", id="a", inputs={"delay": 5}), NodeSpec("work", id="b", deps=["a"])]

    async def crash() -> None:
        with trio.CancelScope() as scope:  # the "process" dies while a runs
            async with Coordinator(REG, journal=SqliteJournal(path), app_data=Probe()).open_run(
                specs, run_id="r"
            ):
                await trio.sleep(1)
                scope.cancel()

    _run_journaled(crash)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE records SET data = '{' WHERE kind = 'add'")
    db.close()
    coord = Coordinator(REG, journal=SqliteJournal(path), app_data=Probe())
    with pytest.raises(dagtrio.JournalError, match="cannot be read back"):
        _run_journaled(lambda: coord.resume("r"))
    claims = f"{os.path.realpath(path)}-claims"
    assert not [key for key in _LIVE if key == (os.path.realpath(path), "r")]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR);"
            " fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))",
            claims,
            str(_Claims._byte("r")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr  # another process may claim it now
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE records SET data = ? WHERE kind = 'add'",
            (dagtrio._durable.codec.encode_batch(specs, 0),),
        )
    db.close()
    assert _run_journaled(lambda: coord.resume("r")).success


async def test_a_run_interrupted_in_this_process_resumes_here(tmp_path: Path) -> None:
    """A KeyboardInterrupt out of an action tears the run down with its claim released:
    the same process resumes it at once, re-running only what had not succeeded."""
    reg = dagtrio.ActionRegistry()
    ran: list[str] = []

    @reg.action()
    async def step(ctx: dagtrio.NodeCtx) -> int:
        ran.append(ctx.node_id)
        if len(ran) == 2:
            raise KeyboardInterrupt
        await trio.lowlevel.checkpoint()
        return 1

    journal = SqliteJournal(tmp_path / "j.db")
    coord = Coordinator(reg, journal=journal)
    specs = [NodeSpec("step", id="a"), NodeSpec("step", id="b", deps=["a"])]
    with pytest.raises(KeyboardInterrupt):
        await coord.run([*specs, NodeSpec("step", id="c", deps=["b"])], run_id="r")
    assert journal.runs()[0].status == "running"
    report = await coord.resume("r")
    assert report.success and ran == ["a", "b", "b", "c"]
    assert await coord.resume("r") == journal.report("r")


async def test_resume_of_a_finished_run_returns_the_report_the_run_returned(
    tmp_path: Path,
) -> None:
    coord = Coordinator(REG, journal=SqliteJournal(tmp_path / "j.db"), app_data=Probe())
    first = await coord.run([NodeSpec("work", id=f"n{i}") for i in range(200)], run_id="r")
    again = await coord.resume("r")
    assert again.finished_at == first.finished_at


@settings(max_examples=40)
@given(_branch_scenarios(), st.integers(0, 12), st.booleans())
def test_branch_state_survives_a_crash_and_resume(
    scenario: dict[str, Any], cut: int, crash_in_idle: bool
) -> None:
    """The same scenarios with a journal, torn down after ``cut`` steps and resumed in
    this process: the rebuilt branch index counts right, nothing the journal had as
    succeeded runs again, and lifting the pauses lets the resumed run end with every
    node final.

    A MockClock at 200x real time rather than autojump, which would leap over the
    journal's worker threads."""
    import tempfile

    steps = scenario["steps"][:cut]
    with tempfile.TemporaryDirectory() as folder:
        journal = SqliteJournal(os.path.join(folder, "j.db"))
        first_probe, second_probe = Probe(), Probe()
        drift: list[str] = []

        def check(run: Any, where: str) -> None:
            stats = run.statistics()
            counts = run.graph.counts()
            ready = counts.get(NodeStatus.READY, 0)
            if stats.ready < 0 or stats.paused < 0 or stats.ready + stats.paused != ready:
                drift.append(f"{where}: ready={stats.ready} paused={stats.paused} READY={ready}")

        async def main() -> tuple[Any, Any]:
            coord = Coordinator(
                REG,
                [_Watch(False)],
                journal=journal,
                max_parallel=scenario["max_parallel"],
                app_data=first_probe,
            )
            with trio.fail_after(3000):
                with trio.CancelScope() as crash:
                    async with coord.open_run(scenario["initial"], run_id="r") as run:
                        for wait, kind, arg in steps:
                            if wait:
                                await trio.sleep(wait)
                            command = _COMMANDS[kind](arg)
                            with suppress(CommandRejectedError, RunFinishedError):
                                await run.submit(command)
                        if crash_in_idle:
                            await trio.sleep(20)
                        crash.cancel()
                # What the journal holds, not the live report: the teardown's flush
                # has 5 s of mock time, 25 ms of real time at this clock's rate, and a
                # loaded machine may cut it short. A success that was never committed
                # was never reported to anyone (events wait for their records), and
                # may run again; a committed one must not.
                before = await trio.to_thread.run_sync(journal.report, "r")
                again = Coordinator(
                    REG,
                    [_Watch(False)],
                    journal=journal,
                    max_parallel=scenario["max_parallel"],
                    app_data=second_probe,
                )
                async with again.open_run(resume="r") as resumed:
                    if not resumed.finished:
                        check(resumed, "after resume")
                    while not resumed.finished:
                        for root in ("main", "c"):
                            if any(_below(root, b) for b in resumed.graph.cancelled_branches):
                                continue
                            with suppress(CommandRejectedError, RunFinishedError):
                                await resumed.submit(ResumeBranch(root))
                        await trio.sleep(7)
                return before, await resumed.wait()

        before, report = trio.run(main, clock=trio.testing.MockClock(rate=200))
    assert first_probe.violations == [] and second_probe.violations == []
    assert drift == []
    for node_id, record in report.nodes.items():
        assert record.status.is_final, (node_id, record.status)
        assert "run ended before" not in (record.error or ""), (node_id, record.error)
        was = before.nodes.get(node_id)
        if was is not None and was.status is NodeStatus.SUCCEEDED:
            assert record.status is NodeStatus.SUCCEEDED and record.outputs == was.outputs
            assert node_id not in second_probe.attempts, f"{node_id} ran again"
