"""The browser view's HTTP side, on real sockets: what a page or a script sees and may do.

No browser here (test_web_browser.py has Chromium): httpx plays the page. The clock is
real because the sockets are; nothing asserts a duration. Each run waits on events the
test sets, so what the view shows at each step is known.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webclient import Mirror, gated_registry, messages, split

import dagtrio
from dagtrio import (
    ActionRegistry,
    Coordinator,
    CustomEvent,
    NodeCtx,
    NodeSpec,
    PauseBranch,
    RunIdle,
    web,
)
from dagtrio.web import wire
from dagtrio.web.feed import Feed

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def chain(n: int, branch: str | None = None, prefix: str = "n") -> list[NodeSpec]:
    return [
        NodeSpec("work", id=f"{prefix}{i}", deps=(f"{prefix}{i - 1}",) if i else (), branch=branch)
        for i in range(n)
    ]


async def post(
    client: httpx.AsyncClient, url: str, path: str, body: Any, *, token: bool = True, **kw: Any
) -> httpx.Response:
    base, secret = split(url)
    headers = {"authorization": f"Bearer {secret}"} if token else {}
    headers.update(kw.pop("headers", {}))
    if isinstance(body, bytes):
        headers.setdefault("content-type", "application/json")
        return await client.post(base + path, content=body, headers=headers, **kw)
    return await client.post(base + path, json=body, headers=headers, **kw)


# ------------------------------------------------------------------ serving


async def test_serve_in_a_nursery_reports_a_loopback_url_with_a_token() -> None:
    gate = trio.Event()
    async with (
        Coordinator(gated_registry({"n0": gate})).open_run(chain(2)) as run,
        trio.open_nursery() as nursery,
    ):
        url = await nursery.start(web.serve, run)
        base, token = split(url)
        assert base.startswith("http://127.0.0.1:") and len(token) >= 24
        async with httpx.AsyncClient() as client:
            snapshot = (await client.get(base + "/api/snapshot")).json()
        assert snapshot["run"]["run_id"] == run.run_id
        assert snapshot["run"]["state"] == "running" and snapshot["run"]["control"] is False
        assert [n["id"] for n in snapshot["nodes"]] == ["n0", "n1"]
        gate.set()
        await run.wait()
        async with httpx.AsyncClient() as client:
            final = (await client.get(base + "/api/snapshot", params={"token": token})).json()
        # The view outlives the run, showing its end, until it is cancelled.
        assert final["run"]["state"] == "finished" and final["run"]["success"] is True
        assert final["run"]["control"] is True
        assert {n["status"] for n in final["nodes"]} == {"succeeded"}
        nursery.cancel_scope.cancel()


async def test_two_views_get_different_tokens_and_a_given_token_is_kept() -> None:
    async with (
        Coordinator(gated_registry({})).open_run([]) as run,
        web.open_view(run) as one,
        web.open_view(run, token="x" * 20) as two,
    ):
        assert split(one)[1] != split(two)[1]
        assert split(two)[1] == "x" * 20
    with pytest.raises(ValueError, match="token"):
        async with web.open_view(run, token="short"):
            pass  # pragma: no cover


async def test_a_port_in_use_is_a_clear_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        async with Coordinator(gated_registry({})).open_run([]) as run:
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
                async with web.open_view(run, port=port):
                    pass  # pragma: no cover
    finally:
        taken.close()


async def test_bad_arguments_are_refused_before_anything_listens() -> None:
    async with Coordinator(gated_registry({})).open_run([]) as run:
        with pytest.raises(ValueError, match="port"):
            await web.serve(run, port=70000)
        with pytest.raises(TypeError, match="host"):
            await web.serve(run, host="")
        with pytest.raises(TypeError, match="takes a Run"):
            await web.serve("run")  # type: ignore[arg-type]


# ------------------------------------------------------------------ events


async def test_a_stream_starts_with_a_snapshot_and_ends_with_the_run() -> None:
    gates = {f"n{i}": trio.Event() for i in range(3)}
    async with (
        Coordinator(gated_registry(gates)).open_run(chain(3)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        base, _ = split(url)
        async with client.stream("GET", base + "/api/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = messages(response)
            kind, _, first = await anext(stream)
            assert kind == "snapshot" and len(first["nodes"]) == 3
            mirror = Mirror()
            mirror.apply(kind, None, first)
            for gate in gates.values():
                gate.set()
            async for kind, ident, data in stream:
                mirror.apply(kind, ident, data)
                if kind == "end":
                    break
    assert mirror.end is not None and mirror.end["run"]["success"] is True
    assert mirror.status == {"n0": "succeeded", "n1": "succeeded", "n2": "succeeded"}
    # One id per event, counting up with no gap: nothing lost, nothing twice.
    assert mirror.ids == list(range(mirror.ids[0], mirror.ids[0] + len(mirror.ids)))
    completed = [e for e in mirror.events if e["type"] == "NodeCompleted"]
    assert [e["node"]["node"] for e in completed] == ["n0", "n1", "n2"]
    assert all(e["outcome"]["outputs"] == {"node": e["node"]["node"]} for e in completed)
    assert all(isinstance(e["at"], float) and e["started_at"] is not None for e in completed)
    # The converter's form: each message reads back as the event it was.
    for data in mirror.events:
        event = dagtrio.converter.structure(data, dagtrio.ExecutionEvent)
        assert type(event).__name__ == data["type"]


def _tree(size: int, fanout: int, failing: set[int]) -> list[NodeSpec]:
    """A tree of ``work`` nodes, ``fanout`` children each, over three branches; the
    nodes numbered in ``failing`` fail."""
    return [
        NodeSpec(
            "work",
            id=f"n{i}",
            deps=(f"n{(i - 1) // fanout}",) if i else (),
            inputs={"fail": i in failing},
            branch=f"b{i % 3}",
        )
        for i in range(size)
    ]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    size=st.integers(1, 30),
    fanout=st.integers(1, 4),
    failing=st.sets(st.integers(0, 29), max_size=3),
    capacity=st.sampled_from([0, 1, 8]),
    hold=st.booleans(),
)
def test_snapshot_plus_events_is_the_run(
    size: int, fanout: int, failing: set[int], capacity: int, hold: bool
) -> None:
    """A page that applies every event to its first snapshot ends where the run ends,
    whatever the graph, the failures and the channel capacities."""
    specs = _tree(size, fanout, failing)

    async def main() -> tuple[Mirror, dagtrio.RunReport]:
        start = trio.Event()
        coordinator = Coordinator(
            gated_registry({"n0": start}),
            event_capacity=capacity,
            command_capacity=capacity,
            on_failure="hold" if hold else "skip",
        )
        async with (
            coordinator.open_run(specs) as run,
            web.open_view(run) as url,
            httpx.AsyncClient(timeout=30) as client,
        ):
            base, _token = split(url)
            async with client.stream("GET", base + "/api/events") as response:
                mirror = Mirror()
                decided: set[str] = set()
                stream = messages(response)
                mirror.apply(*(await anext(stream)))
                start.set()
                async for kind, ident, data in stream:
                    mirror.apply(kind, ident, data)
                    if data.get("type") == "RunIdle":
                        # A later RunIdle may still name a node decided meanwhile.
                        for held in set(data["held"]) - decided:
                            decided.add(held)
                            answer = await post(
                                client,
                                url,
                                "/api/commands",
                                {"type": "CompleteNode", "node_id": held, "outputs": 1},
                            )
                            assert answer.status_code == 200, answer.text
                    if kind == "end":
                        break
        return mirror, run.report()

    mirror, report = trio.run(main)
    assert mirror.status == {i: record.status.value for i, record in report.nodes.items()}
    # A failure says whether its node is held: the page shows the decision at once.
    failures = [e for e in mirror.events if e["type"] == "NodeFailed"]
    assert all(e["held"] is hold for e in failures)
    assert mirror.end is not None and mirror.end["run"]["success"] == report.success


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    size=st.integers(1, 30),
    fanout=st.integers(1, 4),
    failing=st.sets(st.integers(0, 29), max_size=3),
    capacity=st.sampled_from([0, 1, 8]),
    hold=st.booleans(),
    late=st.integers(0, 30),
)
def test_snapshot_plus_updates_is_the_run(
    size: int, fanout: int, failing: set[int], capacity: int, hold: bool, late: int
) -> None:
    """What the page reads (``/api/updates``): its first snapshot with every update
    applied is the run's report, row for row, whatever the graph, the failures, the
    channel capacities, and the moment a second page joins."""
    specs = _tree(size, fanout, failing)

    async def main() -> tuple[list[Mirror], dagtrio.RunReport]:
        start = trio.Event()
        ended = 0
        enough = trio.Event()  # `late` attempts have ended, or the run has
        registry = dagtrio.ActionRegistry()

        @registry.action()
        async def work(ctx: dagtrio.NodeCtx) -> Any:
            nonlocal ended
            try:
                if ctx.node_id == "n0":
                    await start.wait()
                await trio.lowlevel.checkpoint()
                if ctx.inputs.get("fail"):
                    raise RuntimeError(f"{ctx.node_id} was told to fail")
                return {"node": ctx.node_id}
            finally:
                ended += 1
                if ended >= late:
                    enough.set()

        coordinator = Coordinator(
            registry,
            event_capacity=capacity,
            command_capacity=capacity,
            on_failure="hold" if hold else "skip",
        )
        mirrors: list[Mirror] = []
        async with (
            coordinator.open_run(specs) as run,
            web.open_view(run) as url,
            httpx.AsyncClient(timeout=30) as client,
        ):
            base, _token = split(url)

            async def follow(first: bool, joined: trio.Event) -> None:
                async with client.stream("GET", base + "/api/updates") as response:
                    mirror = Mirror()
                    mirrors.append(mirror)
                    decided: set[str] = set()
                    stream = messages(response)
                    mirror.apply(*(await anext(stream)))
                    joined.set()
                    async for kind, ident, data in stream:
                        mirror.apply(kind, ident, data)
                        if first and kind == "update" and data["run"]["state"] == "idle":
                            for held in set(data["run"]["held"]) - decided:
                                decided.add(held)
                                answer = await post(
                                    client,
                                    url,
                                    "/api/commands",
                                    {"type": "CompleteNode", "node_id": held, "outputs": 1},
                                )
                                assert answer.status_code == 200, answer.text
                        if kind == "end":
                            break

            async with trio.open_nursery() as nursery:
                joined = trio.Event()
                nursery.start_soon(follow, True, joined)
                await joined.wait()
                start.set()

                async def until_the_end() -> None:
                    await run.wait()
                    enough.set()

                nursery.start_soon(until_the_end)
                # The second page joins once `late` attempts have ended (or the run has).
                await enough.wait()
                joined = trio.Event()
                nursery.start_soon(follow, False, joined)
                await joined.wait()
        return mirrors, run.report()

    mirrors, report = trio.run(main)
    for mirror in mirrors:
        assert set(mirror.rows) == set(report.nodes)
        for node_id, record in report.nodes.items():
            row = mirror.rows[node_id]
            assert row["status"] == record.status.value, node_id
            assert row["attempts"] == record.attempts, node_id
            assert row["error"] == record.error, node_id
            assert row["supplied"] == record.supplied, node_id
            for name in ("started_at", "finished_at"):
                mine, theirs = row[name], getattr(record, name)
                assert (mine is None) == (theirs is None), (node_id, name)
                assert mine is None or abs(mine - theirs) < 0.002, (node_id, name)
        assert mirror.run["held"] == [] and mirror.run["state"] == "finished"
        assert mirror.end is not None and mirror.end["run"]["success"] == report.success
        # A failure is an event too, with its error and whether its node was held.
        for event in mirror.events:
            assert event["type"] not in ("NodeAdded", "NodeStarted", "NodeCompleted")
            if event["type"] == "NodeFailed":
                assert event["held"] is hold


def _fake_node(i: int, deps: tuple[str, ...] = ()) -> Any:
    from types import SimpleNamespace

    spec = SimpleNamespace(action="work", deps=deps)
    return SimpleNamespace(
        id=f"n{i}",
        spec=spec,
        branch="main",
        status=dagtrio.NodeStatus.PENDING,
        attempts=0,
        started_at=None,
        finished_at=None,
        error=None,
        ended=None,
        supplied=False,
        cached=False,
        on_hold=False,
    )


#: what may happen to a node between two looks: ``start`` (a new attempt), or an end
_MOVES = ["start", "succeed", "fail", "retry", "skip", "ready"]


@settings(max_examples=300, deadline=None)
@given(
    plan=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(1, 4)),
            st.tuples(st.just("move"), st.integers(0, 40), st.sampled_from(_MOVES)),
            st.tuples(st.just("look"), st.just(0)),
            st.tuples(st.just("join"), st.just(0)),
            st.tuples(st.just("read"), st.integers(0, 3)),
        ),
        max_size=60,
    ),
    keep=st.integers(1, 4),
)
def test_every_page_ends_with_the_graph_whatever_it_read_and_when(
    plan: list[tuple[Any, ...]], keep: int
) -> None:
    """The board by itself, against a graph changed by hand: pages join at any moment
    (a look is made for their snapshot), read at their own pace, fall behind (more than KEEP
    updates) and resynchronise from a snapshot; after the last look each page's rows
    are the graph's, with a status and attempt for every node."""
    from dagtrio.web import board as boards

    nodes: dict[str, Any] = {}
    clock = [1000.0]
    # The contract of ``activity``: it moves whenever a row does (here: every step).
    board = boards.Board(nodes, info=lambda: {"state": "running"}, activity=lambda: clock[0])
    board.keep = keep
    pages: list[Mirror] = []

    def snapshot() -> dict[str, Any]:
        board.settle()  # as View.page_snapshot does
        rows = [boards.row_of(node) for node in nodes.values()]
        return json.loads(wire.dump({"position": board.seq, "run": {}, "nodes": rows}))

    def read(page: Mirror) -> None:
        updates = board.take(page.position)
        if updates is None:
            page.apply("snapshot", None, snapshot())
            return
        for text in updates:
            for kind, ident, data in _sse(text):
                page.apply(kind, ident, data)

    for step in plan:
        clock[0] += 0.5
        if step[0] == "add":
            for _ in range(step[1]):
                i = len(nodes)
                nodes[f"n{i}"] = _fake_node(i, (f"n{i - 1}",) if i else ())
        elif step[0] == "move" and nodes:
            node = list(nodes.values())[step[1] % len(nodes)]
            if node.status in (dagtrio.NodeStatus.SUCCEEDED, dagtrio.NodeStatus.SKIPPED):
                continue  # final: nothing moves it again
            move = step[2]
            to = {
                "start": dagtrio.NodeStatus.RUNNING,
                "ready": dagtrio.NodeStatus.READY,
                "retry": dagtrio.NodeStatus.PENDING,
                "succeed": dagtrio.NodeStatus.SUCCEEDED,
                "fail": dagtrio.NodeStatus.FAILED,
                "skip": dagtrio.NodeStatus.SKIPPED,
            }[move]
            if to is node.status and move != "start":
                # As in a run: a row changes with its status or its attempt (a hold
                # decided or released changes the run's held list, sent every time).
                continue
            if move == "fail" and node.status is not dagtrio.NodeStatus.RUNNING:
                continue  # only an attempt fails, and it started (its attempt moved)
            if move == "retry" and node.status not in (
                dagtrio.NodeStatus.RUNNING,
                dagtrio.NodeStatus.FAILED,
            ):
                continue  # a failed attempt waits to go again, or a held node is retried
            if move == "start":
                node.status, node.attempts = dagtrio.NodeStatus.RUNNING, node.attempts + 1
                node.started_at, node.finished_at = clock[0], None
            elif move == "ready":
                node.status = dagtrio.NodeStatus.READY
            elif move == "retry":
                node.status, node.error = dagtrio.NodeStatus.PENDING, "again"
            else:
                node.status = to
                node.finished_at = clock[0]
                node.error = None if move == "succeed" else f"{move}ed"
        elif step[0] == "look":
            if board.readers:
                board._look()
        elif step[0] == "join":
            board.join()
            page = Mirror()
            page.apply("snapshot", None, snapshot())
            pages.append(page)
        elif pages:
            read(pages[step[1] % len(pages)])
    board.close()
    for page in pages:
        read(page)
        expected = json.loads(wire.dump({n: boards.row_of(node) for n, node in nodes.items()}))
        assert set(page.rows) == set(expected)
        for node_id, row in expected.items():
            mine = page.rows[node_id]
            for name in ("status", "attempts", "error"):
                assert mine[name] == row[name], (node_id, name)
            for name in ("started_at", "finished_at"):
                assert (mine[name] is None) == (row[name] is None), (node_id, name)
                assert mine[name] is None or abs(mine[name] - row[name]) < 0.002


def _sse(text: str) -> list[tuple[str, int | None, Any]]:
    """The messages in a chunk of server-sent events."""
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        ident = fields.get("id")
        out.append(
            (
                fields.get("event", "message"),
                None if ident is None else int(ident),
                json.loads(fields["data"]),
            )
        )
    return out


async def test_a_browser_that_never_reads_does_not_hold_the_run_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream whose socket nobody reads: the run still ends, and once the browser
    reads again it is sent a fresh snapshot in place of what it missed."""
    from dagtrio.web import feed

    monkeypatch.setattr(feed, "RING", 1024)  # 6000 nodes overflow it several times
    size = 6000
    gate = trio.Event()
    specs = [NodeSpec("work", id="first")] + [
        NodeSpec("work", id=f"n{i}", deps=("first",)) for i in range(size)
    ]
    async with (
        Coordinator(gated_registry({"first": gate})).open_run(specs) as run,
        web.open_view(run) as url,
    ):
        port = int(split(url)[0].rsplit(":", 1)[1])
        stalled = trio.socket.socket()
        # A small receive buffer fills at once, so the server's writes block.
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await stalled.connect(("127.0.0.1", port))
        await stalled.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
        gate.set()
        with trio.fail_after(120):  # a hang guard, not a measurement
            report = await run.wait()
        assert report.success
        # Only now read: the stream had fallen out of the feed and resynchronises.
        received = bytearray()
        with trio.move_on_after(30):
            while b"event: end" not in received:
                chunk = await stalled.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
        stalled.close()
    text = received.decode(errors="replace")
    assert text.count("event: snapshot") >= 2, "the stalled stream was never resynchronised"
    assert "event: end" in text


@pytest.mark.parametrize("path", ["/api/events", "/api/updates"])
async def test_a_hundred_browsers_at_once(path: str) -> None:
    gate = trio.Event()
    specs = [NodeSpec("work", id="root")] + [
        NodeSpec("work", id=f"n{i}", deps=("root",)) for i in range(200)
    ]
    mirrors: list[Mirror] = []
    async with (
        Coordinator(gated_registry({"root": gate})).open_run(specs) as run,
        web.open_view(run) as url,
    ):
        base, _ = split(url)
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            connected = 0
            all_in = trio.Event()

            async def browse() -> None:
                nonlocal connected
                async with client.stream("GET", base + path) as response:
                    stream = messages(response)
                    mirror = Mirror()
                    mirror.apply(*(await anext(stream)))
                    connected += 1
                    if connected == 100:
                        all_in.set()
                    async for message in stream:
                        mirror.apply(*message)
                        if message[0] == "end":
                            break
                    mirrors.append(mirror)

            async with trio.open_nursery() as nursery:
                for _ in range(100):
                    nursery.start_soon(browse)
                await all_in.wait()
                gate.set()
    report = run.report()
    expected = {i: record.status.value for i, record in report.nodes.items()}
    assert len(mirrors) == 100
    assert all(m.status == expected and m.end is not None for m in mirrors)


async def test_leaving_open_view_ends_every_stream_with_closing() -> None:
    gate = trio.Event()
    async with Coordinator(gated_registry({"n0": gate})).open_run(chain(1)) as run:
        async with httpx.AsyncClient(timeout=30) as client:
            async with web.open_view(run) as url:
                base, _ = split(url)
                response = await client.send(
                    client.build_request("GET", base + "/api/events"), stream=True
                )
                stream = messages(response)
                assert (await anext(stream))[0] == "snapshot"
            ends = [m async for m in stream if m[0] == "end"]
            await response.aclose()
        assert ends and ends[0][2]["closing"] is True
        assert ends[0][2]["run"]["state"] == "running"
        gate.set()


# ------------------------------------------------------------------ controls


async def test_controls_need_the_token() -> None:
    async with Coordinator(gated_registry({})).open_run(chain(1, branch="gate")) as run:
        await run.submit(PauseBranch("gate"))
        async with web.open_view(run) as url, httpx.AsyncClient() as client:
            resume = {"type": "ResumeBranch", "branch": "gate"}
            refused = await post(client, url, "/api/commands", resume, token=False)
            assert refused.status_code == 403 and "token" in refused.json()["error"]
            wrong = await post(
                client,
                url,
                "/api/commands",
                resume,
                token=False,
                headers={"authorization": "Bearer " + "y" * 32},
            )
            assert wrong.status_code == 403
            query = await post(
                client,
                url,
                "/api/commands",
                resume,
                token=False,
                params={"token": "nope"},
            )
            assert query.status_code == 403
            stop = await post(client, url, "/api/shutdown", {"grace": 0}, token=False)
            assert stop.status_code == 403
            assert run.graph.paused_branches == ("gate",)  # nothing changed
            # The printed URL's ?token= is enough too.
            base, token = split(url)
            ok = await client.post(base + "/api/commands", json=resume, params={"token": token})
            assert ok.status_code == 200 and ok.json() == {"applied": True}
            report = await run.wait()
    assert report.success


async def test_requests_from_elsewhere_are_refused() -> None:
    async with Coordinator(gated_registry({})).open_run(chain(1, branch="gate")) as run:
        await run.submit(PauseBranch("gate"))
        async with web.open_view(run) as url, httpx.AsyncClient() as client:
            base, _ = split(url)
            resume = {"type": "ResumeBranch", "branch": "gate"}
            # DNS rebinding: a page of evil.example whose name now points here.
            rebound = await client.get(base + "/api/snapshot", headers={"host": "evil.example"})
            assert rebound.status_code == 403 and "Host" in rebound.json()["error"]
            for headers in (
                {"origin": "http://evil.example"},
                {"origin": "null"},
                {"sec-fetch-site": "cross-site"},
            ):
                answer = await post(client, url, "/api/commands", resume, headers=headers)
                assert answer.status_code == 403, headers
            form = await post(
                client,
                url,
                "/api/commands",
                b"type=ResumeBranch",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert form.status_code == 415
            huge = await post(client, url, "/api/commands", b" " * (2 << 20))
            assert huge.status_code == 413
            # The page's own origin is fine.
            same = await post(client, url, "/api/commands", resume, headers={"origin": base})
            assert same.status_code == 200
            # GET never changes anything.
            assert (await client.get(base + "/api/commands")).status_code == 405
            page = await client.get(base + "/")
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            assert page.headers["referrer-policy"] == "no-referrer"
        await run.wait()


async def test_bad_commands_are_400_with_a_reason_and_change_nothing() -> None:
    gate = trio.Event()
    async with (
        Coordinator(gated_registry({"n0": gate})).open_run(chain(2)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient() as client,
    ):
        cases: list[tuple[Any, str]] = [
            (b"{", "not JSON"),
            (b"[1, 2]", "JSON object"),
            ({"branch": "main"}, "no 'type'"),
            ({"type": "AddNode", "spec": {"action": "work"}}, "cannot be sent from a view"),
            ({"type": "EmitEvent", "event": {}}, "cannot be sent"),
            ({"type": "PauseBranch"}, "branch"),
            ({"type": "PauseBranch", "branch": 3}, "branch"),
            ({"type": "PauseBranch", "branch": "main", "colour": "red"}, "colour"),
            ({"type": "RetryNode", "node_id": "n1", "inputs": [1]}, "inputs"),
            ({"type": "CompleteNode"}, "node_id"),
            (b"[" * 100_000, "nested too deep"),
            (b'{"type": "PauseBranch", "branch": "a", "reason": ' + b"9" * 5000 + b"}", "JSON"),
        ]
        for body, reason in cases:
            answer = await post(client, url, "/api/commands", body)
            assert answer.status_code == 400, (body, answer.text)
            assert reason in answer.json()["error"], (body, answer.json())
        for grace in ("soon", -1, True, [1], 10**400):
            answer = await post(client, url, "/api/shutdown", {"grace": grace})
            assert answer.status_code == 400, grace
        # Well formed but refused by the run: 409, with the run's reason.
        rejected = await post(client, url, "/api/commands", {"type": "RetryNode", "node_id": "zz"})
        assert rejected.status_code == 409 and "zz" in rejected.json()["error"]
        assert run.graph.paused_branches == () and not run.finished
        gate.set()
        report = await run.wait()
        late = await post(client, url, "/api/commands", {"type": "PauseBranch", "branch": "x"})
        assert late.status_code == 409 and "ended" in late.json()["error"]
        late_stop = await post(client, url, "/api/shutdown", {"grace": None})
        assert late_stop.status_code == 409
    assert report.success


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=60),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        ["type", "branch", "node_id", "inputs", "outputs", "reason", "x"]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=8,
        ).map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries(
            {"type": st.sampled_from([*wire.CONTROLS, "AddNode", "SetNodeInputs"])},
            optional={
                "branch": st.one_of(st.text(max_size=4), st.integers()),
                "node_id": st.one_of(st.text(max_size=4), st.none()),
                "inputs": st.one_of(st.none(), st.dictionaries(st.text(max_size=3), st.integers())),
                "outputs": st.integers(),
                "dag_name": st.one_of(st.none(), st.text(max_size=3), st.integers()),
            },
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_any_body_is_a_control_or_a_bad_request(body: bytes) -> None:
    try:
        command: Any = wire.parse_command(body)
    except wire.BadRequest as exc:
        command = exc
    if isinstance(command, wire.BadRequest):
        assert str(command), "a refusal says why"
    else:
        assert type(command) in wire.CONTROLS.values()


async def test_a_paused_branch_is_approved_and_a_held_node_completed_with_typed_outputs() -> None:
    specs = [
        NodeSpec("work", id="draft"),
        NodeSpec("work", id="approve", deps=("draft",), inputs={"fail": True}),
        NodeSpec("work", id="publish", deps=("approve",)),
        NodeSpec("work", id="translate", deps=("draft",), branch="i18n"),
    ]
    coordinator = Coordinator(gated_registry({}), on_failure="hold")
    async with coordinator.open_run(specs) as run:
        await run.submit(PauseBranch("i18n", reason="wait for the glossary"))
        events = run.events()
        async with web.open_view(run) as url, httpx.AsyncClient() as client:
            async for event in events:
                if isinstance(event, RunIdle):
                    break
            snapshot = (await client.get(split(url)[0] + "/api/snapshot")).json()
            assert snapshot["run"]["state"] == "idle"
            assert snapshot["run"]["held"] == ["approve"]
            assert snapshot["run"]["paused"] == ["i18n"]
            outputs = {"approved_by": "ana", "at": 3, "ok": True, "tags": ["x", None]}
            done = await post(
                client,
                url,
                "/api/commands",
                {"type": "CompleteNode", "node_id": "approve", "outputs": outputs},
            )
            assert done.status_code == 200, done.text
            again = await post(
                client, url, "/api/commands", {"type": "CompleteNode", "node_id": "approve"}
            )
            assert again.status_code == 409 and "approve" in again.json()["error"]
            resumed = await post(
                client, url, "/api/commands", {"type": "ResumeBranch", "branch": "i18n"}
            )
            assert resumed.status_code == 200
            detail = (await client.get(split(url)[0] + "/api/nodes/approve")).json()
            report = await run.wait()
    assert report.success
    assert report.nodes["approve"].outputs == outputs and report.nodes["approve"].supplied
    assert detail["record"]["outputs"] == outputs and detail["record"]["supplied"] is True
    assert detail["spec"]["inputs"] == {"fail": True}


async def test_shutdown_with_grace_from_the_view() -> None:
    gate = trio.Event()
    async with (
        Coordinator(gated_registry({"n0": gate})).open_run(chain(3)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient() as client,
    ):
        answer = await post(client, url, "/api/shutdown", {"grace": 0})
        assert answer.status_code == 200
        report = await run.wait()
    assert not report.success
    assert {record.status.value for record in report.nodes.values()} == {"cancelled"}


async def test_node_details_and_odd_values() -> None:
    registry = ActionRegistry()

    class Unshowable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    @registry.action()
    async def odd(ctx: NodeCtx) -> Any:
        return {
            "nan": float("nan"),
            "set": {1},
            3: "int key",
            "obj": object,
            "big": 10**5000,
            "bad": Unshowable(),
        }

    async with (
        Coordinator(registry).open_run([NodeSpec("odd", id="a/b c")]) as run,
        web.open_view(run) as url,
        httpx.AsyncClient() as client,
    ):
        await run.wait()
        base, _ = split(url)
        detail = await client.get(base + "/api/nodes/a%2Fb%20c")
        assert detail.status_code == 200, detail.text
        outputs = detail.json()["record"]["outputs"]
        # What JSON cannot hold is shown as its repr, never a broken page.
        assert (
            outputs["nan"] == "nan"
            and outputs["set"] == "frozenset({1})"
            and outputs["3"] == "int key"
        )
        assert outputs["big"].startswith("<int of") and "cannot be shown" in outputs["bad"]
        missing = await client.get(base + "/api/nodes/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        assert (await client.get(base + "/static/../app.py")).status_code == 404
        assert (await client.get(base + "/static/app.py")).status_code == 404


# ------------------------------------------------------------------ the feed


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 8),
    steps=st.lists(st.one_of(st.integers(1, 12), st.just(0)), max_size=40),
    limit=st.integers(1, 6),
)
def test_a_cursor_gets_every_event_in_order_or_a_resync(
    capacity: int, steps: list[int], limit: int
) -> None:
    """Batches of k events (k > 0, also more than the ring holds) and reads (0) in any
    order: a reader sees contiguous positions, each event's own, and is told to
    resynchronise exactly when some it wanted are gone."""
    feed = Feed(capacity)
    feed.readers = 1  # a feed nobody reads keeps nothing
    pushed = 0
    cursor = 0
    seen: list[int] = []
    for step in steps:
        if step:
            feed.extend(pushed, [CustomEvent("e", i) for i in range(pushed, pushed + step)], 1.0)
            pushed += step
            continue
        entries = feed.take(cursor, limit)
        oldest = max(0, pushed - capacity)
        if entries is None:
            assert cursor < oldest
            cursor = pushed  # a snapshot now covers everything pushed
            continue
        assert cursor >= oldest
        positions = [position for position, _ in entries]
        assert positions == list(range(cursor, cursor + len(positions)))
        assert len(positions) == min(limit, pushed - cursor)
        assert [json.loads(text)["payload"] for _, text in entries] == positions
        seen.extend(positions)
        cursor += len(positions)
    assert seen == sorted(set(seen))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        | st.frozensets(st.integers(), max_size=2)
        | st.tuples(inner)
    ),
    max_leaves=6,
)
_names = st.text(st.characters(blacklist_characters="/"), min_size=1, max_size=5)
_refs = st.builds(dagtrio.NodeRef, _names, _names)
_specs = st.builds(
    NodeSpec,
    _names,
    id=_names,
    deps=st.lists(_names, max_size=3, unique=True).map(tuple),
    inputs=st.dictionaries(st.text(max_size=3), _json_values, max_size=3),
    timeout=st.none() | st.floats(0.1, 10),
    try_count=st.integers(1, 3),
    branch=st.none() | _names,
    estimate=st.none() | st.floats(0, 5),
)
_events = st.one_of(
    st.builds(dagtrio.NodeAdded, _refs, _specs, _names),
    st.builds(dagtrio.NodeStarted, _refs, st.integers(1, 5)),
    st.builds(
        dagtrio.NodeCompleted,
        _refs,
        st.builds(
            dagtrio.NodeOutput,
            _json_values,
            st.just(True),
            st.none() | st.dictionaries(st.sampled_from(["supplied", "cached"]), st.just(True)),
        ),
    ),
    st.builds(dagtrio.NodeFailed, _refs, st.text(max_size=5), st.none() | st.text(max_size=5)),
    st.builds(CustomEvent, _names, _json_values),
)


@settings(max_examples=400, deadline=None)
@given(
    event=_events,
    at=st.floats(0, 2e9),
    started=st.none() | st.floats(0, 2e9),
    held=st.none() | st.booleans(),
)
def test_the_fast_encodings_say_what_the_converter_says(
    event: dagtrio.ExecutionEvent, at: float, started: float | None, held: bool | None
) -> None:
    """Written by hand or by the converter, an event's JSON is the converter's form
    (with what JSON cannot hold as its repr), plus ``at``, an ending's ``started_at``
    and a failure's ``held``."""
    text = wire.encode_event(event, at, started, held)
    expected = wire._safe(
        dagtrio.converter.unstructure(event, unstructure_as=dagtrio.ExecutionEvent)
    )
    expected["at"] = round(at, 3)  # to the millisecond
    if started is not None and type(event) in wire.ENDINGS:
        expected["started_at"] = round(started, 3)
    if held is not None and type(event) is dagtrio.NodeFailed:
        expected["held"] = held
    assert json.loads(text) == json.loads(wire.dump(expected))


# ------------------------------------------------------------------ a journal


WRITER = """
import sys, time
from pathlib import Path
import trio
import trio.testing
from dagtrio import ActionRegistry, Coordinator, NodeSpec, SqliteJournal

folder = Path(sys.argv[2])
registry = ActionRegistry()

@registry.action()
async def step(ctx):
    # Each node waits for the test to let it go: the test sees the journal grow.
    while not (folder / ctx.node_id).exists():
        await trio.sleep(0.02)
    return ctx.node_id

specs = [NodeSpec("step", id=f"s{i}", deps=(f"s{i - 1}",) if i else ()) for i in range(4)]
coordinator = Coordinator(registry, journal=SqliteJournal(sys.argv[1]))
trio.run(lambda: coordinator.run(specs, run_id="followed"))
"""


@pytest.mark.parametrize("path", ["/api/events", "/api/updates"])
async def test_a_journal_followed_while_another_process_writes_it(
    tmp_path: Path, path: str
) -> None:
    db = tmp_path / "runs.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = await trio.lowlevel.open_process([sys.executable, str(script), str(db), str(tmp_path)])
    try:
        with trio.fail_after(60):
            # Another process writes the file: there is nothing to wait on but the file.
            while not db.exists() or "followed" not in await _run_ids(db):  # noqa: ASYNC110
                await trio.sleep(0.05)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                lambda task_status: web.serve_journal(db, poll=0.02, task_status=task_status)
            )
            base, _token = split(url)
            async with httpx.AsyncClient(timeout=60) as client:
                async with client.stream("GET", base + path) as response:
                    stream = messages(response)
                    mirror = Mirror()
                    mirror.apply(*(await anext(stream)))
                    # Nothing has ended yet (the journal records no starts).
                    assert set(mirror.status) == {f"s{i}" for i in range(4)}
                    assert set(mirror.status.values()) <= {"pending", "ready"}
                    for i in range(4):
                        (tmp_path / f"s{i}").touch()
                        # The completion arrives through the stream, while the other
                        # process is still running the rest.
                        async for message in stream:
                            mirror.apply(*message)
                            if mirror.status[f"s{i}"] == "succeeded":
                                break
                    async for message in stream:
                        mirror.apply(*message)
                        if message[0] == "end":
                            break
                refused = await post(
                    client, url, "/api/commands", {"type": "PauseBranch", "branch": "main"}
                )
            nursery.cancel_scope.cancel()
        assert mirror.end is not None and mirror.end["run"]["success"] is True
        assert mirror.end["run"]["read_only"] is True
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]
        with trio.fail_after(60):
            assert await writer.wait() == 0
    finally:
        writer.kill()
        await writer.wait()


async def test_a_followed_journal_shows_a_rerun_of_its_run(tmp_path: Path) -> None:
    """A crashed run followed from its journal, then resumed with its failed nodes run
    again: the page shows the skipped node that now runs, as the report says."""
    db = tmp_path / "runs.db"
    crashing = True
    registry = dagtrio.ActionRegistry()

    @registry.action()
    async def work(ctx: dagtrio.NodeCtx) -> int:
        if crashing and ctx.node_id == "slow":
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        if crashing and ctx.node_id == "x":
            raise RuntimeError("x fails")
        return 1

    specs = [
        NodeSpec("work", id="x"),
        NodeSpec("work", id="slow"),
        NodeSpec("work", id="y", deps=("x",)),
    ]
    # The process "dies" once y is skipped: the run stays unfinished in its journal.
    with trio.CancelScope() as crash:
        coordinator = Coordinator(registry, journal=dagtrio.SqliteJournal(db))
        async with coordinator.open_run(specs, run_id="dead") as run:
            async for event in run.events():
                if isinstance(event, dagtrio.NodeSkipped):
                    crash.cancel()
    crashing = False
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: web.serve_journal(
                db, run_id="dead", poll=0.02, task_status=task_status
            )
        )
        base, _ = split(url)
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", base + "/api/updates") as response,
        ):
            stream = messages(response)
            mirror = Mirror()
            mirror.apply(*(await anext(stream)))
            assert mirror.status["y"] == "skipped"
            resumer = Coordinator(registry, journal=dagtrio.SqliteJournal(db))
            report = await resumer.resume("dead", rerun="failed")
            async for message in stream:
                mirror.apply(*message)
                if message[0] == "end":
                    break
        nursery.cancel_scope.cancel()
    assert report.success
    assert mirror.status == {i: record.status.value for i, record in report.nodes.items()}
    assert {i: row["attempts"] for i, row in mirror.rows.items()} == {
        i: record.attempts for i, record in report.nodes.items()
    }


async def _run_ids(db: Path) -> set[str]:
    journal = dagtrio.SqliteJournal(db, read_only=True)
    try:
        return {info.run_id for info in await trio.to_thread.run_sync(journal.runs)}
    except dagtrio.JournalError:
        return set()
    finally:
        journal.close()


async def test_serve_journal_of_a_missing_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    await Coordinator(gated_registry({}), journal=dagtrio.SqliteJournal(db)).run(chain(1))
    with pytest.raises(KeyError, match="no run 'nope'"):
        await web.serve_journal(db, "nope")
    with pytest.raises(ValueError, match="poll"):
        await web.serve_journal(db, poll=0)


async def test_resume_and_complete_through_the_api_with_a_journal(tmp_path: Path) -> None:
    journal = dagtrio.SqliteJournal(tmp_path / "runs.db")
    coordinator = Coordinator(gated_registry({}), journal=journal, on_failure="hold")
    specs = [NodeSpec("work", id="a", inputs={"fail": True}), NodeSpec("work", id="b", deps=("a",))]
    async with coordinator.open_run(specs, run_id="held") as run:
        events = run.events()
        async with web.open_view(run) as url, httpx.AsyncClient() as client:
            async for event in events:
                if isinstance(event, RunIdle):
                    break
            answer = await post(
                client,
                url,
                "/api/commands",
                {"type": "CompleteNode", "node_id": "a", "outputs": [1]},
            )
            assert answer.status_code == 200, answer.text
            report = await run.wait()
    assert report.success
    # Acknowledged means journaled.
    assert journal.report("held").nodes["a"].outputs == [1]
    journal.close()


async def test_streams_past_the_limit_are_refused_until_one_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each open stream may hold a snapshot on its way: their number is bounded."""
    from dagtrio.web import app

    monkeypatch.setattr(app, "MAX_STREAMS", 2)
    gate = trio.Event()
    async with (
        Coordinator(gated_registry({"n0": gate})).open_run(chain(1)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        base, _ = split(url)

        async def stream() -> httpx.Response:
            return await client.send(client.build_request("GET", base + "/api/events"), stream=True)

        first, second = await stream(), await stream()
        assert first.status_code == second.status_code == 200
        refused = await stream()
        assert refused.status_code == 503
        assert "close one" in json.loads(await refused.aread())["error"]
        await second.aclose()
        with trio.fail_after(30):
            while True:
                third = await stream()
                if third.status_code == 200:
                    break
                await third.aclose()
                # The server notices the close on its own time: nothing to wait on here.
                await trio.sleep(0.01)
        for response in (first, third):
            await response.aclose()
        gate.set()


async def test_a_browser_that_stopped_reading_cannot_keep_the_view_open() -> None:
    """hypercorn's writes have no timeout: the view cuts what still blocks once its
    grace is over, so leaving open_view, or cancelling serve, always ends, and no
    socket of the view is left open."""
    specs = [NodeSpec("work", id=f"n{i}") for i in range(3000)]
    for leave in ("open_view", "cancel serve"):
        async with Coordinator(gated_registry({})).open_run(specs) as run:
            stalled = trio.socket.socket()
            try:
                stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                with trio.fail_after(30):  # a hang guard: this is what used to hang
                    if leave == "open_view":
                        async with web.open_view(run) as url:
                            port = await _stall(stalled, url)
                            await run.wait()
                    else:
                        async with trio.open_nursery() as nursery:
                            url = await nursery.start(web.serve, run)
                            port = await _stall(stalled, url)
                            await run.wait()
                            nursery.cancel_scope.cancel()
            finally:
                stalled.close()
        assert _sockets_on(port) == 0, leave


def _sockets_on(port: int) -> int:
    """This process's open sockets whose own port is ``port`` (0 where not countable)."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return 0
    found = 0
    for descriptor in descriptors:
        try:
            duplicate = os.dup(descriptor)
        except OSError:
            continue
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)  # not a socket
            continue
        with sock, contextlib.suppress(OSError, IndexError, TypeError):
            found += sock.getsockname()[1] == port
    return found


def test_cutting_connections_leaks_no_descriptor() -> None:
    """The cut looks at every open file through a duplicate: none may stay open."""
    from dagtrio.web import app

    before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(20):
        assert app._cut_connections(("127.0.0.1", 1), False) == 0
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before


async def _stall(stalled: Any, url: str) -> int:
    port = int(split(url)[0].rsplit(":", 1)[1])
    await stalled.connect(("127.0.0.1", port))
    await stalled.send(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
    return port


async def test_bound_to_every_interface_names_other_than_ours_are_refused() -> None:
    async with (
        Coordinator(gated_registry({})).open_run([]) as run,
        web.open_view(run, host="0.0.0.0") as url,
        httpx.AsyncClient() as client,
    ):
        base, _ = split(url)
        assert base.startswith("http://127.0.0.1:")
        port = base.rsplit(":", 1)[1]
        for host, status in (
            (f"evil.example:{port}", 403),  # DNS rebinding sends its own domain
            (f"127.0.0.1:{port}", 200),
            (f"10.1.2.3:{port}", 200),  # an address of this machine, as seen from outside
            (f"localhost:{port}", 200),
            ("127.0.0.1:1", 403),
        ):
            answer = await client.get(base + "/api/snapshot", headers={"host": host})
            assert answer.status_code == status, host


async def test_a_page_and_a_script_together_each_see_the_whole_run() -> None:
    """The page's stream beside a script's full one: the script gets every event (an
    event let go once encoded is never missing), the page every node's end state; the
    run builds its hot path's events only while the script's stream is open."""
    gate = trio.Event()
    specs = [NodeSpec("work", id="root")] + [
        NodeSpec("work", id=f"n{i}", deps=("root",)) for i in range(500)
    ]
    async with (
        Coordinator(gated_registry({"root": gate})).open_run(specs) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=60) as client,
    ):
        base, _ = split(url)
        mirrors: dict[str, Mirror] = {}

        async def follow(path: str, started: trio.Event) -> None:
            async with client.stream("GET", base + path) as response:
                mirror = mirrors[path] = Mirror()
                stream = messages(response)
                mirror.apply(*(await anext(stream)))
                started.set()
                async for message in stream:
                    mirror.apply(*message)
                    if message[0] == "end":
                        break

        async with trio.open_nursery() as nursery:
            started = trio.Event()
            nursery.start_soon(follow, "/api/updates", started)
            await started.wait()
            assert not run._state.listening  # the page alone: no event is even built
            started = trio.Event()
            nursery.start_soon(follow, "/api/events", started)
            await started.wait()
            assert run._state.listening
            gate.set()
    expected = {i: record.status.value for i, record in run.report().nodes.items()}
    for path, mirror in mirrors.items():
        assert mirror.status == expected, path
        assert mirror.snapshots == 1, path  # nothing had to be resent
    events = mirrors["/api/events"].events
    assert sum(e["type"] == "NodeCompleted" for e in events) == len(specs)
    assert mirrors["/api/updates"].updates >= 1


async def test_the_run_builds_its_events_only_while_a_script_reads_them() -> None:
    """A view, and a page, cost a run no event of its hot path: `/api/events` makes the
    run build them while it is open, and only then."""
    gates = {"n0": trio.Event()}
    async with (
        Coordinator(gated_registry(gates)).open_run(chain(3)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        base, _ = split(url)
        assert not run._state.listening
        async with client.stream("GET", base + "/api/updates") as page:
            stream = messages(page)
            mirror = Mirror()
            mirror.apply(*(await anext(stream)))
            assert not run._state.listening
            async with client.stream("GET", base + "/api/events") as script:
                await anext(messages(script))
                assert run._state.listening
            # The stream's end reaches the server a moment after the client closed it.
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            assert not run._state.listening
            gates["n0"].set()
            async for message in stream:
                mirror.apply(*message)
                if message[0] == "end":
                    break
    assert mirror.status == {"n0": "succeeded", "n1": "succeeded", "n2": "succeeded"}


async def test_a_tap_that_raises_is_detached_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The promise a tap's caller keeps: a watcher that fails is logged and dropped,
    the other watchers go on, and the run never fails for it."""
    seen: list[int] = []

    class Broken:
        every = True

        def push(self, position: int, event: dagtrio.ExecutionEvent) -> None:
            raise RuntimeError("a view with a bug")

        def close(self) -> None:
            raise RuntimeError("and a bad close")

    class Counting:
        closed = False
        every = True

        def push(self, position: int, event: dagtrio.ExecutionEvent) -> None:
            seen.append(position)

        def close(self) -> None:
            self.closed = True

    counting = Counting()
    async with Coordinator(gated_registry({})).open_run(chain(5)) as run:
        assert run._watch(Broken()) == 0
        assert run._watch(counting) == 0
        report = await run.wait()
    assert report.success
    assert seen == list(range(len(seen))) and len(seen) >= 10  # started + completed each
    assert counting.closed
    assert "a tap on run" in caplog.text and "detached" in caplog.text


async def test_a_view_that_fails_to_look_ends_its_pages_and_leaves_the_run_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug of the view's own (here: reading the run's state raises) is logged, its
    pages are told the view ended, and the run and the application go on."""
    gates = {"n0": trio.Event()}
    async with (
        Coordinator(gated_registry(gates)).open_run(chain(3)) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        base, _ = split(url)
        async with client.stream("GET", base + "/api/updates") as page:
            stream = messages(page)
            mirror = Mirror()
            mirror.apply(*(await anext(stream)))

            def broken() -> dict[str, Any]:
                raise RuntimeError("a view with a bug")

            board = run._taps[0]._push.__self__  # type: ignore[attr-defined]
            board.info = broken
            gates["n0"].set()
            async for message in stream:
                mirror.apply(*message)
                if message[0] == "end":
                    break
        report = await run.wait()
    assert report.success
    assert mirror.end is not None
    assert "stopped following its run" in caplog.text


def test_the_page_reads_status_codes_in_the_servers_order() -> None:
    """An update names a status by its place in `NodeStatus`; the page's own list of
    statuses must be that list, in that order."""
    import re

    from dagtrio.web import board

    script = (Path(web.__file__).parent / "static" / "app.js").read_text()
    found = re.search(r"const STATUSES = \[([^\]]*)\]", script)
    assert found is not None
    assert re.findall(r"'(\w+)'", found.group(1)) == [s.value for s in board.STATUSES]


@pytest.mark.parametrize("rate", [0, 500, 5_000, 19_000, 21_000, 100_000, 1_000_000])
async def test_the_pump_looks_five_times_a_second_or_once_while_the_run_is_fast(
    autojump_clock: trio.testing.MockClock, rate: int
) -> None:
    """Over ten seconds of a run where ``rate`` nodes a second end (and one row moves
    between any two looks): five looks a second while a person can follow, one a
    second once the run is faster than FAST. The clock is Trio's (MockClock)."""
    from dagtrio.web import board as boards

    nodes: dict[str, Any] = {"n0": _fake_node(0)}
    board = boards.Board(
        nodes,
        activity=trio.current_time,  # something always moved
        moved=lambda: int(trio.current_time() * rate),
    )
    board.join()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(board.pump)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    looks = board.seq - 1  # the first is the page's baseline
    if rate <= boards.FAST * 0.95:
        assert 45 <= looks <= 51, looks
    else:
        assert 9 <= looks <= 11, looks


async def test_a_page_gets_progress_and_failures_while_the_run_builds_no_other_event() -> None:
    """With only a page open the run builds none of its hot path's events, yet the
    page's updates carry what the rows cannot say: an action's progress, a failure's
    error, in the run's order."""
    release = trio.Event()
    registry = dagtrio.ActionRegistry()

    @registry.action()
    async def chatty(ctx: dagtrio.NodeCtx) -> int:
        await release.wait()
        await ctx.emit({"tokens": 3})
        if ctx.inputs.get("fail"):
            raise RuntimeError("told to fail")
        return 1

    specs = [NodeSpec("chatty", id="talk"), NodeSpec("chatty", id="bad", inputs={"fail": True})]
    async with (
        Coordinator(registry).open_run(specs) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        base, _ = split(url)
        async with client.stream("GET", base + "/api/updates") as page:
            stream = messages(page)
            mirror = Mirror()
            mirror.apply(*(await anext(stream)))
            assert not run._state.listening
            release.set()
            async for message in stream:
                mirror.apply(*message)
                if message[0] == "end":
                    break
    kinds = [(e["type"], e["node"]["node"]) for e in mirror.events if "node" in e]
    assert ("NodeProgress", "talk") in kinds and ("NodeProgress", "bad") in kinds
    assert ("NodeFailed", "bad") in kinds
    progress = [e for e in mirror.events if e["type"] == "NodeProgress"]
    assert all(e["payload"] == {"tokens": 3} for e in progress)
    assert mirror.status == {"talk": "succeeded", "bad": "failed"}
