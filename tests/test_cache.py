"""Memoization across runs: a node whose cache key already succeeded reuses the outputs."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dagtrio import (
    ActionRegistry,
    CancelBranch,
    Coordinator,
    InvalidSpecError,
    NodeCompleted,
    NodeCtx,
    NodeOutput,
    NodeSpec,
    NodeStatus,
    RunReport,
    SqliteJournal,
)
from dagtrio._durable.sqlite import SCHEMA_VERSION
from dagtrio.testing import RecordingHook, dags


def counting_registry(**cache: Any) -> tuple[ActionRegistry, Counter[str]]:
    """Actions ``add`` (cached as ``cache`` says), ``plain`` (never) and ``flaky``."""
    registry = ActionRegistry()
    calls: Counter[str] = Counter()

    @registry.action(cache=cache.get("add", True))
    async def add(ctx: NodeCtx) -> int:
        calls[ctx.node_id] += 1
        return ctx.inputs.get("x", 0) + sum(ctx.upstream.values())

    @registry.action
    async def plain(ctx: NodeCtx) -> int:
        calls[ctx.node_id] += 1
        return ctx.inputs.get("x", 0) + sum(ctx.upstream.values())

    return registry, calls


async def test_a_second_run_reuses_every_cached_result(tmp_path: Path) -> None:
    registry, calls = counting_registry()
    cache = SqliteJournal(tmp_path / "cache.db")
    coordinator = Coordinator(registry, cache=cache)
    specs = [
        NodeSpec("add", id="a", inputs={"x": 1}),
        NodeSpec("add", id="b", deps=["a"], inputs={"x": 2}),
        NodeSpec("plain", id="c", deps=["b"]),
    ]
    first = await coordinator.run(specs)
    second = await coordinator.run(specs)
    assert first.outputs() == second.outputs() == {"a": 1, "b": 3, "c": 3}
    assert calls == {"a": 1, "b": 1, "c": 2}
    assert [first.nodes[n].cached for n in "abc"] == [False, False, False]
    assert [second.nodes[n].cached for n in "abc"] == [True, True, False]
    assert second.nodes["a"].status is NodeStatus.SUCCEEDED
    assert second.nodes["a"].attempts == 1
    assert cache.cache_size() == 2
    assert cache.cache_size("add") == 2
    assert cache.cache_size("plain") == 0
    # The flag survives a report's JSON round trip.
    assert RunReport.from_json(second.to_json()).nodes["a"].cached


async def test_the_key_follows_inputs_and_upstream_outputs(tmp_path: Path) -> None:
    registry = ActionRegistry()
    calls: Counter[str] = Counter()
    seed = {"value": 0}

    @registry.action
    async def source(ctx: NodeCtx) -> int:
        return seed["value"]

    @registry.action(cache=True)
    async def square(ctx: NodeCtx) -> int:
        calls[ctx.node_id] += 1
        return ctx.upstream["src"] ** 2 + ctx.inputs["k"]

    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))

    def graph(k: int) -> list[NodeSpec]:
        return [
            NodeSpec("source", id="src"),
            NodeSpec("square", id="sq", deps=["src"], inputs={"k": k}),
        ]

    assert (await coordinator.run(graph(0))).outputs()["sq"] == 0
    assert (await coordinator.run(graph(0))).nodes["sq"].cached
    assert (await coordinator.run(graph(1))).outputs()["sq"] == 1  # other inputs: a miss
    seed["value"] = 3
    report = await coordinator.run(graph(1))  # other upstream outputs: a miss
    assert report.outputs()["sq"] == 10
    assert not report.nodes["sq"].cached
    assert calls["sq"] == 3


async def test_the_spec_overrides_the_action(tmp_path: Path) -> None:
    registry, calls = counting_registry()
    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))
    specs = [
        NodeSpec("plain", id="opted-in", inputs={"x": 1}, cache=True),
        NodeSpec("add", id="opted-out", inputs={"x": 1}, cache=False),
    ]
    await coordinator.run(specs)
    report = await coordinator.run(specs)
    assert report.nodes["opted-in"].cached
    assert not report.nodes["opted-out"].cached
    assert calls == {"opted-in": 1, "opted-out": 2}


async def test_without_a_cache_nothing_is_cached(tmp_path: Path) -> None:
    registry, calls = counting_registry()
    coordinator = Coordinator(registry)
    specs = [NodeSpec("add", id="a", cache=True)]
    await coordinator.run(specs)
    report = await coordinator.run(specs)
    assert not report.nodes["a"].cached
    assert calls["a"] == 2


async def test_a_key_function_decides_what_counts(tmp_path: Path) -> None:
    registry = ActionRegistry()
    calls: list[str] = []

    @registry.action(cache=lambda ctx: ["v1", ctx.inputs["url"]])
    async def fetch(ctx: NodeCtx) -> str:
        calls.append(ctx.node_id)
        return f"body of {ctx.inputs['url']}"

    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))
    await coordinator.run([NodeSpec("fetch", id="f1", inputs={"url": "u", "trace": 1})])
    # Another node id and another unrelated input: the same key, so a hit.
    report = await coordinator.run([NodeSpec("fetch", id="f2", inputs={"url": "u", "trace": 2})])
    assert report.nodes["f2"].cached
    assert report.outputs() == {"f2": "body of u"}
    assert calls == ["f1"]


async def test_keys_of_different_actions_never_collide(tmp_path: Path) -> None:
    registry = ActionRegistry()

    @registry.action(cache=lambda ctx: "same")
    async def one(ctx: NodeCtx) -> int:
        return 1

    @registry.action(cache=lambda ctx: "same")
    async def two(ctx: NodeCtx) -> int:
        return 2

    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))
    specs = [NodeSpec("one", id="one"), NodeSpec("two", id="two")]
    await coordinator.run(specs)
    report = await coordinator.run(specs)
    assert report.outputs() == {"one": 1, "two": 2}
    assert report.nodes["one"].cached and report.nodes["two"].cached


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (lambda ctx: {1: object()}, "cache key of node 'n'"),
        (lambda ctx: 1 / 0, "ZeroDivisionError"),
    ],
)
async def test_a_bad_key_fails_the_node_and_stores_nothing(
    tmp_path: Path, key: Any, why: str
) -> None:
    registry = ActionRegistry()
    ran: list[int] = []

    @registry.action(cache=key)
    async def act(ctx: NodeCtx) -> int:
        ran.append(1)
        return 1

    cache = SqliteJournal(tmp_path / "c.db")
    report = await Coordinator(registry, cache=cache).run([NodeSpec("act", id="n")])
    assert report.nodes["n"].status is NodeStatus.FAILED
    assert why in (report.nodes["n"].error or "")
    assert ran == []  # the key comes first: a node the cache cannot serve does not run
    assert cache.cache_size() == 0


async def test_inputs_that_are_not_json_fail_the_node_naming_it(tmp_path: Path) -> None:
    registry, _ = counting_registry()
    cache = SqliteJournal(tmp_path / "c.db")
    report = await Coordinator(registry, cache=cache).run(
        [NodeSpec("add", id="n", inputs={"x": 1, "when": object()})]
    )
    assert report.nodes["n"].status is NodeStatus.FAILED
    assert "cache key of node 'n'" in (report.nodes["n"].error or "")


async def test_outputs_that_are_not_json_fail_the_node(tmp_path: Path) -> None:
    registry = ActionRegistry()

    @registry.action(cache=True)
    async def opaque(ctx: NodeCtx) -> object:
        return object()

    cache = SqliteJournal(tmp_path / "c.db")
    report = await Coordinator(registry, cache=cache).run([NodeSpec("opaque", id="n")])
    assert report.nodes["n"].status is NodeStatus.FAILED
    assert "outputs cannot be stored in the cache" in (report.nodes["n"].error or "")
    assert cache.cache_size() == 0


async def test_failures_are_not_cached(tmp_path: Path) -> None:
    registry = ActionRegistry()
    outcomes = [NodeOutput.failed("not yet"), NodeOutput.ok("done"), NodeOutput.ok("again")]

    @registry.action(cache=True)
    async def flaky(ctx: NodeCtx) -> NodeOutput:
        return outcomes.pop(0)

    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))
    specs = [NodeSpec("flaky", id="n")]
    assert not (await coordinator.run(specs)).success
    second = await coordinator.run(specs)
    assert second.outputs() == {"n": "done"}
    assert not second.nodes["n"].cached
    third = await coordinator.run(specs)
    assert third.outputs() == {"n": "done"}
    assert third.nodes["n"].cached
    assert outcomes == [NodeOutput.ok("again")]


async def test_a_hit_is_announced_with_its_key(tmp_path: Path) -> None:
    registry, _ = counting_registry()
    hook = RecordingHook()
    coordinator = Coordinator(registry, [hook], cache=SqliteJournal(tmp_path / "c.db"))
    await coordinator.run([NodeSpec("add", id="n", inputs={"x": 4})])
    hook.events.clear()
    await coordinator.run([NodeSpec("add", id="n", inputs={"x": 4})])
    (completed,) = [e for e in hook.events if isinstance(e, NodeCompleted)]
    assert completed.outcome.outputs == 4
    assert completed.outcome.metadata is not None
    assert completed.outcome.metadata["cached"] is True
    assert completed.outcome.metadata["cache_key"].startswith("add:")


async def test_sync_actions_are_cached_too(tmp_path: Path) -> None:
    registry = ActionRegistry()
    calls: list[str] = []

    @registry.action(cache=True)
    def blocking(ctx: NodeCtx) -> list[int]:
        calls.append(ctx.node_id)
        return [ctx.inputs["x"], ctx.inputs["x"]]

    coordinator = Coordinator(registry, cache=SqliteJournal(tmp_path / "c.db"))
    await coordinator.run([NodeSpec("blocking", id="n", inputs={"x": 2})])
    report = await coordinator.run([NodeSpec("blocking", id="n", inputs={"x": 2})])
    assert report.outputs() == {"n": [2, 2]}
    assert calls == ["n"]


async def test_the_journal_records_cached_nodes(tmp_path: Path) -> None:
    registry, _ = counting_registry()
    journal = SqliteJournal(tmp_path / "runs.db")
    # One file as journal and cache: the usual set-up.
    coordinator = Coordinator(registry, journal=journal, cache=journal)
    specs = [NodeSpec("add", id="a", inputs={"x": 1}), NodeSpec("plain", id="b", deps=["a"])]
    await coordinator.run(specs, run_id="first")
    report = await coordinator.run(specs, run_id="second")
    stored = journal.report("second")
    assert stored.nodes["a"].cached and not stored.nodes["b"].cached
    assert stored.outputs() == report.outputs()
    assert not journal.report("first").nodes["a"].cached


async def test_clear_cache_and_prune(tmp_path: Path) -> None:
    registry, _ = counting_registry()
    registry.register(registry.get("plain"), replace=True, cache=True)
    cache = SqliteJournal(tmp_path / "c.db")
    coordinator = Coordinator(registry, cache=cache)
    specs = [NodeSpec("add", id="a"), NodeSpec("plain", id="p")]
    await coordinator.run(specs)
    assert cache.cache_size() == 2
    assert cache.clear_cache("add") == 1
    assert cache.cache_size() == 1
    report = await coordinator.run(specs)
    assert not report.nodes["a"].cached and report.nodes["p"].cached
    assert cache.prune(older_than=3600) == 0
    assert cache.cache_size() == 2  # young entries stay
    await trio.sleep(0.01)  # real time: entries are stamped with the wall clock
    cache.prune(older_than=0)
    assert cache.cache_size() == 0
    assert cache.clear_cache() == 0


@pytest.mark.skipif(
    sqlite3.sqlite_version_info < (3, 35), reason="making a version 1 file needs DROP COLUMN"
)
async def test_a_schema_1_journal_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    journal = SqliteJournal(path)
    journal.runs()  # creates the file
    journal.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE cache")
        db.execute("ALTER TABLE runs DROP COLUMN owner")
        db.execute("ALTER TABLE records DROP COLUMN traceback")
        db.execute("ALTER TABLE records DROP COLUMN ended")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    registry, _ = counting_registry()
    coordinator = Coordinator(registry, cache=SqliteJournal(path))
    await coordinator.run([NodeSpec("add", id="a")])
    assert (await coordinator.run([NodeSpec("add", id="a")])).nodes["a"].cached
    with sqlite3.connect(path) as db:
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert version == (str(SCHEMA_VERSION),)


def test_bad_cache_options_are_refused() -> None:
    registry = ActionRegistry()
    with pytest.raises(TypeError, match="cache must be a SqliteJournal"):
        Coordinator(registry, cache="cache.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache must be True, False or a function"):
        registry.action(cache="yes")(lambda ctx: None)  # type: ignore[call-overload]
    assert len(registry) == 0
    with pytest.raises(InvalidSpecError, match=r"node 'n'.*cache must be True, False or None"):
        NodeSpec("x", id="n", cache="yes")  # type: ignore[arg-type]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    specs=dags(
        action=["add", "plain"],
        max_nodes=12,
        inputs=st.fixed_dictionaries({"x": st.integers(0, 3)}),
    ),
    opt=st.lists(st.sampled_from([None, True, False]), min_size=12, max_size=12),
    max_parallel=st.integers(1, 4),
)
def test_a_cached_rerun_has_the_same_outputs_and_runs_only_uncached_nodes(
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[NodeSpec],
    opt: list[bool | None],
    max_parallel: int,
) -> None:
    """Property: with deterministic actions, a second run gives the same report, and an
    action runs again exactly for the nodes that do not use the cache."""
    import attrs

    specs = [attrs.evolve(spec, cache=opt[int(spec.id[1:])]) for spec in specs]  # type: ignore[index]
    registry, calls = counting_registry()
    cache = SqliteJournal(tmp_path_factory.mktemp("cache") / "c.db")
    coordinator = Coordinator(registry, cache=cache, max_parallel=max_parallel)
    first = trio.run(coordinator.run, specs)
    calls.clear()
    second = trio.run(coordinator.run, specs)
    assert second.outputs() == first.outputs()
    uses_cache = {
        spec.id: spec.cache if spec.cache is not None else spec.action == "add" for spec in specs
    }
    assert {node for node, rec in second.nodes.items() if rec.cached} == {
        node for node, used in uses_cache.items() if used
    }
    assert set(calls) == {node for node, used in uses_cache.items() if not used}
    cache.close()


async def test_a_hit_on_a_node_cancelled_meanwhile_does_not_count(tmp_path: Path) -> None:
    class HeldCache(SqliteJournal):
        """Holds lookups (in their worker thread) until the test lets them go."""

        hold = False
        entered = threading.Event()
        release = threading.Event()

        def _cache_get(self, key: str) -> Any:
            if self.hold:
                self.entered.set()
                self.release.wait(10)
            return super()._cache_get(key)

    registry, _ = counting_registry()
    cache = HeldCache(tmp_path / "c.db")
    coordinator = Coordinator(registry, journal=cache, cache=cache)
    specs = [NodeSpec("add", id="n", branch="main/b")]
    await coordinator.run(specs, run_id="first")
    cache.hold = True
    async with coordinator.open_run(specs, run_id="second") as run:
        await trio.to_thread.run_sync(cache.entered.wait, 10)
        await run.submit(CancelBranch("main/b"))
        cache.release.set()
    record = run.report().nodes["n"]
    assert record.status is NodeStatus.CANCELLED
    assert not record.cached
    assert not cache.report("second").nodes["n"].cached
