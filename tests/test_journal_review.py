"""Adversarial tests of the durability code (journal, resume, cache).

Tests marked ``xfail(strict=True)`` demonstrate a bug that is still open: the reason
says what goes wrong. The others pin properties the other journal tests do not cover.

A "crash" is simulated in-process with `Mortal`: at the chosen moment the journal stops
reaching the file (as if the process had been killed with SIGKILL) and the scope around
the run is cancelled, so nothing the teardown would write gets to the disk. What is on
the file is then what a killed process would have left.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    AddNode,
    AddNodes,
    CommandRejected,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    JournalError,
    NodeCompleted,
    NodeCtx,
    NodeSpec,
    NodeStatus,
    PauseBranch,
    RunReport,
    SqliteJournal,
)
from dagtrio.testing import RecordingHook, dags


class Mortal(SqliteJournal):
    """A journal whose process can be "killed": once `dead`, nothing reaches the file.

    A write already in its worker thread when the kill comes still lands, as a commit
    that beat the kill would.
    """

    dead = False

    def _write(self, *args: Any, **kwargs: Any) -> None:
        if self.dead:
            return
        super()._write(*args, **kwargs)


def finish(journal_path: Path, coordinator_for: Any) -> RunReport:
    """What the second process does: resume run ``"r"`` (or read it, if it had ended)."""
    journal = SqliteJournal(journal_path)
    (info,) = journal.runs()
    if info.status == "finished":
        return journal.report("r")
    return trio.run(
        lambda: coordinator_for(journal).resume("r"),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )


def outcome(report: RunReport) -> dict[str, tuple[NodeStatus, Any]]:
    return {node: (rec.status, rec.outputs) for node, rec in report.nodes.items()}


# --------------------------------------------------------------------------- resume


def growing_registry(ran: list[str]) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action
    async def work(ctx: NodeCtx) -> Any:
        ran.append(ctx.node_id)
        await trio.sleep(ctx.inputs.get("delay", 0))
        if ctx.attempt <= ctx.inputs.get("fail", 0):
            raise RuntimeError(f"attempt {ctx.attempt} failed")
        return 1 + sum(ctx.upstream.values())

    return registry


class GrowAndWatch(EventHook):
    """Adds two children (explicit ids) to the nodes in ``grow``; remembers what it saw
    succeed, with the outputs. With ``kill``, calls it on receiving event number
    ``kill_after`` (0-based), before handling it."""

    def __init__(
        self,
        grow: frozenset[str],
        latency: float,
        kill: Callable[[], None] | None = None,
        kill_after: int = 0,
    ) -> None:
        self.grow = grow
        self.latency = latency
        self.kill = kill
        self.kill_after = kill_after
        self.seen = 0
        self.succeeded: dict[str, Any] = {}

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if self.kill is not None and self.seen == self.kill_after:
            self.kill()
            await trio.sleep_forever()
        self.seen += 1
        if self.latency:
            await trio.sleep(self.latency)
        if not isinstance(event, NodeCompleted):
            return None
        node = event.node.node
        self.succeeded[node] = event.outcome.outputs
        if node in self.grow:
            return [
                AddNodes(
                    [
                        NodeSpec("work", id=f"{node}+{i}", deps=[node], inputs={"delay": 0.5})
                        for i in range(2)
                    ]
                )
            ]
        return None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=dags(
        action="work",
        max_nodes=14,
        inputs=st.fixed_dictionaries(
            {},
            optional={
                "delay": st.sampled_from([0, 0.25, 1.0]),
                "fail": st.sampled_from([1, 5]),  # 1: one retry; 5: fails for good
            },
        ),
    ),
    grow=st.sets(st.integers(0, 13), max_size=4),
    kill_after=st.integers(0, 80),
    capacity=st.sampled_from([0, 1, 100]),
    max_parallel=st.integers(1, 4),
    latency=st.sampled_from([0.0, 0.1]),
)
def test_a_run_killed_at_any_hook_event_resumes_to_the_uninterrupted_result(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[NodeSpec],
    grow: set[int],
    kill_after: int,
    capacity: int,
    max_parallel: int,
    latency: float,
) -> None:
    """Property, in-process and for any capacities, parallelism, retries, growth and
    hook latency (the subprocess crash test covers one configuration): the resumed run
    ends with the same nodes, statuses and outputs as an uninterrupted one, and a node
    a hook saw succeed before the kill keeps its output and does not run again.

    The kill falls while the hook holds its ``kill_after``-th event, before the
    commands it would return are applied: the case the ``handled`` mark is for. (A kill
    before anything was committed is test_a_run_killed_before_its_first_batch_....)"""
    specs = [attrs.evolve(spec, try_count=2) if "fail" in spec.inputs else spec for spec in specs]
    growth = frozenset(f"n{i}" for i in grow)

    def coordinator_for(
        journal: SqliteJournal | None, ran: list[str], hook: GrowAndWatch | None = None
    ) -> Coordinator:
        hook = hook or GrowAndWatch(growth, latency)
        return Coordinator(
            growing_registry(ran),
            [hook],
            journal=journal,
            max_parallel=max_parallel,
            event_capacity=capacity,
            command_capacity=capacity,
        )

    clock = functools.partial(trio.testing.MockClock, autojump_threshold=0)
    expected = trio.run(coordinator_for(None, []).run, specs, clock=clock())

    path = tmp_path_factory.mktemp("kill") / "j.db"
    journal = Mortal(path)
    scope = trio.CancelScope()

    def kill() -> None:
        journal.dead = True
        scope.cancel()

    watcher = GrowAndWatch(growth, latency, kill, kill_after)

    async def first_life() -> None:
        with scope:
            try:
                await coordinator_for(journal, [], watcher).run(specs, run_id="r")
            except BaseException:
                # Once "killed", how the teardown goes is not this test's business (it
                # can crash today: see test_a_cancelled_run_never_starts_a_worker_late).
                if not journal.dead:
                    raise

    trio.run(first_life, clock=clock())
    journal.close()
    seen = watcher.succeeded

    ran_again: list[str] = []
    report = finish(path, lambda j: coordinator_for(j, ran_again))
    assert outcome(report) == outcome(expected)
    for node, outputs in seen.items():
        assert report.nodes[node].outputs == outputs
        assert node not in ran_again, f"{node} was reported done, then ran again"


# --------------------------------------------------------------------------- open bugs


def small_registry(ran: list[str] | None = None) -> ActionRegistry:
    registry = ActionRegistry()

    @registry.action
    async def work(ctx: NodeCtx) -> Any:
        if ran is not None:
            ran.append(ctx.node_id)
        await trio.sleep(ctx.inputs.get("t", 0))
        return ctx.node_id

    return registry


async def test_a_run_killed_before_its_first_batch_does_not_resume_to_an_empty_success(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    journal = Mortal(tmp_path / "j.db")
    journal.dead = True  # killed right after the header is committed: no batch lands
    specs = [NodeSpec("work", id="a"), NodeSpec("work", id="b", deps=["a"])]
    with trio.CancelScope() as scope:
        async with Coordinator(small_registry(), journal=journal).open_run(specs, run_id="r"):
            scope.cancel()
    assert [info.status for info in SqliteJournal(tmp_path / "j.db").runs()] == ["running"]
    coordinator = Coordinator(small_registry(), journal=SqliteJournal(tmp_path / "j.db"))
    try:
        report = await coordinator.resume("r")
    except JournalError:
        return  # refusing to resume a run whose graph never reached the file is fine too
    assert set(report.nodes) == {"a", "b"}, f"resumed to {dict(report.nodes)}"


@pytest.mark.parametrize("listener", ["hook", "reader"])
async def test_a_full_disk_is_a_plain_journal_error_with_listeners(
    tmp_path: Path, listener: str
) -> None:
    journal = SqliteJournal(tmp_path / "tiny.db")
    journal.runs()
    journal._connection.execute("PRAGMA max_page_count = 8")  # type: ignore[union-attr]
    hooks = [RecordingHook()] if listener == "hook" else []
    coordinator = Coordinator(small_registry(), hooks, journal=journal)
    big = [NodeSpec("work", id=f"n{i}" + "x" * 200) for i in range(400)]

    async def run_it() -> None:
        async with coordinator.open_run(big, run_id="full") as run:
            if listener == "reader":
                async for _ in run.events():
                    pass

    with trio.fail_after(10), pytest.raises(JournalError, match="full"):
        await run_it()


async def test_records_after_a_failed_batch_are_never_written(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A transient failure (a lock held past ``timeout`` by another process, then
    released) must not leave a journal with a hole in it."""
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    real_write = journal._write
    failed = False

    def flaky_write(run_id: str, rows: Any, *args: Any) -> None:
        nonlocal failed
        if not failed and any(row[1] == "add" and row[0] > 1 for row in rows):
            failed = True
            # While this batch is "waiting for the lock", the added nodes run and end.
            trio.from_thread.run(trio.sleep, 1)
            raise JournalError(f"journal {path}: cannot write run 'r': it is locked")
        real_write(run_id, rows, *args)

    journal._write = flaky_write  # type: ignore[method-assign]

    class Grow(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            if isinstance(event, NodeCompleted) and event.node.node == "root":
                children = [
                    NodeSpec("work", id=f"c{i}", deps=["root"], inputs={"t": 0.5}) for i in range(5)
                ]
                return [AddNodes(children)]
            return None

    coordinator = Coordinator(small_registry(), [Grow()], journal=journal)
    # A JournalError, or today an ExceptionGroup holding one (see the test above).
    with pytest.raises((JournalError, BaseExceptionGroup)):
        await coordinator.run([NodeSpec("work", id="root")], run_id="r")
    journal._write = real_write  # type: ignore[method-assign]
    seqs = [seq for seq, _, _ in journal.stored_run("r").records]
    assert seqs == list(range(1, len(seqs) + 1)), f"records {seqs}: a gap"
    journal.report("r")  # readable


def committed_mark(path: Path) -> int:
    """The ``handled`` mark of run ``"r"`` as committed in the file."""
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT handled FROM runs WHERE run_id = 'r'").fetchone()
    finally:
        db.close()
    return row[0] if row else 0


class RejectionPlanner(EventHook):
    """On x's completion (once y has ended) asks for a node under a dep that does not
    exist; on the rejection, adds a fallback. With ``crashing``, it never answers the
    rejection: the process dies meanwhile."""

    def __init__(self, crashing: bool = False) -> None:
        self.crashing = crashing
        self.handling_rejection = trio.Event()

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeCompleted) and event.node.node == "x":
            # y's outcome record comes after x's and before the rejection.
            while ctx.graph.status("y") is not NodeStatus.SUCCEEDED:  # noqa: ASYNC110
                await trio.sleep(0.1)
            return [AddNode(NodeSpec("work", id="follow-up", deps=["missing"]))]
        if isinstance(event, CommandRejected):
            self.handling_rejection.set()
            if self.crashing:
                await trio.sleep_forever()
            return [AddNode(NodeSpec("work", id="fallback", deps=["x"]))]
        return None


async def test_a_hooks_answer_to_a_rejection_survives_a_crash(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    specs = [NodeSpec("work", id="x"), NodeSpec("work", id="y", inputs={"t": 1})]
    # Any later record carries the mark to the file; a branch without nodes is harmless.
    later = PauseBranch("main/elsewhere")
    async with Coordinator(small_registry(), [RejectionPlanner()]).open_run(specs) as run:
        await run.submit(later)
    uninterrupted = run.report()
    assert set(uninterrupted.nodes) == {"x", "y", "fallback"}

    path = tmp_path / "j.db"
    journal = Mortal(path)
    planner = RejectionPlanner(crashing=True)
    with trio.CancelScope() as scope:
        coordinator = Coordinator(small_registry(), [planner], journal=journal)
        async with coordinator.open_run(specs, run_id="r") as run:
            await planner.handling_rejection.wait()
            await trio.sleep(0.1)  # x and y pass the end of the pipeline
            await run.submit(later)
            for _ in range(500):
                if committed_mark(path) >= 2:  # record 2: x's outcome
                    break
                await trio.sleep(0.01)
            journal.dead = True  # killed while the hook handles the rejection
            scope.cancel()
    resumed = await Coordinator(
        small_registry(), [RejectionPlanner()], journal=SqliteJournal(path)
    ).resume("r")
    assert outcome(resumed) == outcome(uninterrupted)


async def test_a_shutdown_survives_a_crash_during_its_grace(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    class Grow(EventHook):
        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            if isinstance(event, NodeCompleted) and event.node.node == "a":
                return [AddNode(NodeSpec("work", id="more", deps=["a"], inputs={"t": 5}))]
            return None

    specs = [NodeSpec("work", id="a", inputs={"t": 5})]
    async with Coordinator(small_registry(), [Grow()]).open_run(specs) as run:
        await trio.sleep(1)
        await run.shutdown(grace=10)
    uninterrupted = run.report()
    assert not uninterrupted.success
    assert uninterrupted.nodes["more"].status is NodeStatus.CANCELLED

    # Journaled, a waits for nothing that comes: the autojumping clock moves while
    # journal writes are in their threads, and a sleeping a could end before the
    # "process" is killed. Here it is killed while a runs, during the grace period.
    journal = Mortal(tmp_path / "j.db")
    stuck = ActionRegistry()

    @stuck.action(name="work")
    async def never_done(ctx: NodeCtx) -> None:
        await trio.sleep_forever()

    with trio.CancelScope() as scope:
        async with Coordinator(stuck, [Grow()], journal=journal).open_run(specs, run_id="r") as run:
            await trio.sleep(1)
            await run.shutdown(grace=10)
            await trio.sleep(1)  # killed during the grace period
            journal.dead = True
            scope.cancel()
    ran: list[str] = []
    resumed = await Coordinator(
        small_registry(ran), [Grow()], journal=SqliteJournal(tmp_path / "j.db")
    ).resume("r")
    assert not resumed.success
    assert ran == []  # the shutdown holds: what was running then is cancelled, not re-run
    assert resumed.nodes["a"].status is NodeStatus.CANCELLED
    assert "more" not in resumed.nodes


async def test_sync_actions_holding_every_thread_token_do_not_stall_a_journaled_run(
    tmp_path: Path,
) -> None:
    limiter = trio.to_thread.current_default_thread_limiter()
    # What 40 abandoned (timed-out) sync actions hold until their threads return.
    borrowers = [object() for _ in range(int(limiter.total_tokens))]
    for borrower in borrowers:
        limiter.acquire_on_behalf_of_nowait(borrower)
    coordinator = Coordinator(
        small_registry(), [RecordingHook()], journal=SqliteJournal(tmp_path / "j.db")
    )
    try:
        # A real clock: a MockClock's autojump would leap to this deadline while the
        # writer's thread works.
        with trio.fail_after(3):
            report = await coordinator.run([NodeSpec("work", id="a")], run_id="r")
    finally:
        for borrower in borrowers:
            limiter.release_on_behalf_of(borrower)
    assert report.success


async def test_a_run_cannot_be_resumed_twice_at_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    ran: list[str] = []
    specs = [NodeSpec("work", id="a", inputs={"t": 5}), NodeSpec("work", id="b", deps=["a"])]
    path = tmp_path / "j.db"
    with trio.CancelScope() as scope:
        dying = ActionRegistry()

        @dying.action(name="work")
        async def dies_in_a(ctx: NodeCtx) -> None:
            ran.append(ctx.node_id)
            scope.cancel()  # the "process" dies while a runs
            await trio.sleep_forever()

        await Coordinator(dying, journal=SqliteJournal(path)).run(specs, run_id="r")
    assert ran == ["a"]
    ran.clear()
    errors: list[BaseException] = []

    # Two "processes", their files open before either resumes (opening races are the
    # business of test_concurrent_first_opens_of_a_new_journal_all_succeed).
    journals = [SqliteJournal(path), SqliteJournal(path)]
    for journal in journals:
        journal.runs()

    # The resumed run holds node "a" until the other resume was refused: without it,
    # one resume could finish the run before the other reads it (under the autojump
    # clock, the journal's threads let the run race ahead), and resuming a finished
    # run is no conflict but a stored report.
    refused = trio.Event()
    holding = ActionRegistry()

    @holding.action(name="work")
    async def work_once_the_other_is_refused(ctx: NodeCtx) -> str:
        ran.append(ctx.node_id)
        if ctx.node_id == "a":
            await refused.wait()
        return ctx.node_id

    async def resume(journal: SqliteJournal) -> None:
        try:
            await Coordinator(holding, journal=journal).resume("r")
        except JournalError as exc:
            errors.append(exc)
            refused.set()

    # No deadline: the autojump clock would leap to it while the journal's threads work.
    async with trio.open_nursery() as nursery:
        for journal in journals:
            nursery.start_soon(resume, journal)
    assert sorted(ran) == ["a", "b"], f"actions ran {Counter(ran)}"
    assert len(errors) == 1
    assert "UNIQUE" not in str(errors[0])


async def test_on_start_seeds_are_not_added_again_on_resume(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    class Planner(EventHook):
        def __init__(self, crash: Callable[[], None] | None = None) -> None:
            self.crash = crash
            self.calls: list[str] = []

        async def on_start(self, ctx: HookContext) -> Any:
            self.calls.append("on_start")
            return [AddNode(NodeSpec("work", inputs={"t": 1}))]  # an automatic id

        async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
            self.calls.append(type(event).__name__)
            if self.crash is not None and isinstance(event, NodeCompleted):
                self.crash()
                await trio.sleep_forever()
            return None

    specs = [NodeSpec("work", id="a", inputs={"t": 2})]
    uninterrupted = await Coordinator(small_registry(), [Planner()]).run(specs)
    journal = Mortal(tmp_path / "j.db")
    with trio.CancelScope() as scope:

        def crash() -> None:
            journal.dead = True
            scope.cancel()

        await Coordinator(small_registry(), [Planner(crash)], journal=journal).run(
            specs, run_id="r"
        )
    planner = Planner()
    resumed = await Coordinator(
        small_registry(), [planner], journal=SqliteJournal(tmp_path / "j.db")
    ).resume("r")
    assert sorted(resumed.nodes) == sorted(uninterrupted.nodes)
    assert planner.calls[0] == "RunResumed"


def test_concurrent_first_opens_of_a_new_journal_all_succeed(tmp_path: Path) -> None:
    errors: list[str] = []
    for i in range(60):
        path = tmp_path / f"new-{i}.db"
        barrier = threading.Barrier(4)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            journal = SqliteJournal(path)
            try:
                journal.runs()
            except JournalError as exc:
                errors.append(str(exc))
            finally:
                journal.close()

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


async def test_pruning_a_live_run_leaves_no_orphan_records(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "j.db"
    journal = SqliteJournal(path)
    coordinator = Coordinator(small_registry(), journal=journal)
    specs = [NodeSpec("work", id=f"n{i}", inputs={"t": i}) for i in range(5)]
    async with coordinator.open_run(specs, run_id="r"):
        await trio.sleep(1.5)
        prune = functools.partial(journal.prune, older_than=0, include_unfinished=True)
        # Going on in this process: never pruned.
        assert await trio.to_thread.run_sync(prune) == 0
    assert journal.report("r").success

    # Deleted behind the run's back (another process's prune): the run stops with a
    # clear error instead of writing orphans, and prune sweeps what it left.
    def delete_s() -> None:
        with contextlib.closing(sqlite3.connect(path)) as other, other:
            other.execute("DELETE FROM runs WHERE run_id = 's'")

    with pytest.raises(JournalError, match="deleted from the journal while it ran"):  # noqa: PT012
        async with coordinator.open_run(specs, run_id="s"):
            await trio.sleep(1.5)
            delete_s()
    journal.prune(older_than=0)
    orphans = journal._connection.execute(  # type: ignore[union-attr]
        "SELECT COUNT(*) FROM records WHERE run_id NOT IN (SELECT run_id FROM runs)"
    ).fetchone()
    assert orphans == (0,)
    await coordinator.run([NodeSpec("work", id="x")], run_id="s")  # the id is free again
    assert set(journal.report("s").nodes) == {"x"}


async def test_inputs_with_mixed_key_types_can_be_cached(tmp_path: Path) -> None:
    registry = ActionRegistry()

    @registry.action(cache=True)
    async def pick(ctx: NodeCtx) -> Any:
        return ctx.inputs["table"][1]

    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))
    specs = [NodeSpec("pick", id="p", inputs={"table": {1: "one", "two": 2}})]
    report = await coordinator.run(specs)
    assert report.nodes["p"].status is NodeStatus.SUCCEEDED, report.nodes["p"].error


def test_a_cancelled_run_never_starts_a_worker_late() -> None:
    """Found by the kill property above; no journal needed. Trio shuffles the order of
    the tasks woken together, so it takes a few tries (about one in four fails)."""

    async def one_try() -> None:
        specs = [NodeSpec("work", id="a", inputs={"t": 1}), NodeSpec("work", id="b", deps=["a"])]
        async with trio.open_nursery() as nursery:

            async def killer() -> None:
                await trio.sleep(1)  # as a ends
                nursery.cancel_scope.cancel()

            nursery.start_soon(killer)
            await Coordinator(small_registry()).run(specs)

    for _ in range(60):
        trio.run(one_try, clock=trio.testing.MockClock(autojump_threshold=0))


# --------------------------------------------------------------------------- pinned


@pytest.mark.parametrize("limit", [1, 2, 5])
@pytest.mark.parametrize("hooks", [0, 1])
@pytest.mark.parametrize("capacity", [0, 100])
def test_a_throttled_run_always_resumes_dispatching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, hooks: int, capacity: int
) -> None:
    """With a tiny backlog limit the run stops starting nodes after almost every record
    and relies on the writer's JournalProgress to go on: it must never stall, and what
    it wrote must be the whole run."""
    import dagtrio._runtime.loop

    monkeypatch.setattr(dagtrio._runtime.loop, "BACKLOG_LIMIT", limit)
    journal = SqliteJournal(tmp_path / "j.db")
    coordinator = Coordinator(
        small_registry(),
        [RecordingHook() for _ in range(hooks)],
        journal=journal,
        max_parallel=3,
        event_capacity=capacity,
        command_capacity=capacity,
    )
    specs = [NodeSpec("work", id=f"n{i}", deps=[f"n{i - 1}"] if i % 4 else []) for i in range(40)]

    async def main() -> RunReport:
        # A real clock: a MockClock's autojump would leap to this deadline while the
        # writer's thread works, which is all a throttled run waits for.
        with trio.fail_after(30):
            return await coordinator.run(specs, run_id="r")

    report = trio.run(main)
    assert report.success
    assert journal.runs()[0].status == "finished"
    assert outcome(journal.report("r")) == outcome(report)
