"""The live view's page in a real headless Chromium (Debian's), as a person uses it.

Each test serves a run whose actions wait on events the test sets, opens the printed
URL, and acts on the page the way a person would: reads the counts, clicks Approve,
types outputs. The page must show no console error and break no content-security
rule. A screenshot of each page's last state is kept in build/ (CI's artifacts).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from webclient import gated_registry

import dagtrio
from dagtrio import (
    AddNodes,
    Coordinator,
    EventHook,
    ExecutionEvent,
    HookContext,
    NodeCompleted,
    NodeFailed,
    NodeSpec,
    PauseBranch,
    RunIdle,
    web,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


registry = gated_registry


async def wait_for(chromium: Any, script: str, arg: Any = None) -> Any:
    """Wait until ``script`` (a JS expression) is truthy in the page; its value.

    Passed as a function: Playwright would eval a bare expression, which the page's
    content-security policy (no 'unsafe-eval') rightly refuses.
    """
    function = f"() => ({script})"
    handle = await chromium.call(lambda: chromium.page.wait_for_function(function, arg=arg))
    return await chromium.call(handle.json_value)


async def text(chromium: Any, selector: str) -> str:
    return str(await chromium.call(lambda: chromium.page.locator(selector).first.inner_text()))


def assert_clean(chromium: Any) -> None:
    assert chromium.problems == [], chromium.problems


class Planner(EventHook):
    """Each ``fan`` node that completes adds ``width`` nodes after it: a growing run."""

    def __init__(self, width: int) -> None:
        self.width = width

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> Any:
        if isinstance(event, NodeCompleted) and event.node.node in ("fan1", "fan2"):
            parent = event.node.node
            return [
                AddNodes(
                    [
                        NodeSpec("work", id=f"{parent}.{i}", deps=(parent,))
                        for i in range(self.width)
                    ]
                )
            ]
        return None


async def test_the_page_shows_a_growing_run(chromium: Any) -> None:
    gates = {"fan1": trio.Event(), "fan2": trio.Event(), "last": trio.Event()}
    specs = [
        NodeSpec("work", id="fan1"),
        NodeSpec("work", id="fan2", deps=("fan1",)),
        NodeSpec("work", id="last", deps=("fan2",)),
    ]
    coordinator = Coordinator(registry(gates), [Planner(40)])
    async with coordinator.open_run(specs) as run, web.open_view(run) as url:
        await chromium.open(url)
        assert await wait_for(chromium, "window.dagtrio.nodes.size === 3")
        assert await text(chromium, "#run-state") == "running"
        gates["fan1"].set()
        # The graph grows while the page is open: 40 more, then 40 more.
        assert await wait_for(chromium, "window.dagtrio.nodes.size === 43")
        gates["fan2"].set()
        assert await wait_for(chromium, "window.dagtrio.nodes.size === 83")
        succeeded = "document.querySelector('#counts [data-status=succeeded] .n')"
        assert await wait_for(chromium, f"{succeeded} && {succeeded}.textContent === '82'")
        gates["last"].set()
        await run.wait()
        assert await wait_for(
            chromium, "document.querySelector('#run-state').textContent === 'succeeded'"
        )
        assert await wait_for(chromium, "document.querySelector('#conn').textContent === 'ended'")
        await chromium.screenshot("view-growing-run.png")
    assert_clean(chromium)


async def test_a_paused_branch_is_approved_by_a_click(chromium: Any) -> None:
    specs = [
        NodeSpec("work", id="draft"),
        NodeSpec("work", id="review", deps=("draft",), branch="review"),
        NodeSpec("work", id="publish", deps=("review",), branch="review"),
    ]
    async with Coordinator(registry({})).open_run(specs) as run:
        await run.submit(PauseBranch("review", reason="a person signs off"))
        async with web.open_view(run) as url:
            await chromium.open(url)
            button = '.paused-branch[data-branch="review"] button[data-action=resume]'
            await chromium.call(lambda: chromium.page.locator(button).wait_for())
            assert not run.finished
            await chromium.call(lambda: chromium.page.locator(button).click())
            report = await run.wait()
            assert await wait_for(
                chromium, "document.querySelector('#run-state').textContent === 'succeeded'"
            )
            await chromium.screenshot("view-approved.png")
    assert report.success
    assert_clean(chromium)


async def test_a_held_failure_is_completed_with_typed_outputs(chromium: Any) -> None:
    specs = [
        NodeSpec("work", id="draft"),
        NodeSpec("work", id="approve", deps=("draft",), inputs={"fail": True}),
        NodeSpec("work", id="publish", deps=("approve",)),
    ]
    coordinator = Coordinator(registry({}), on_failure="hold")
    async with coordinator.open_run(specs) as run:
        events = run.events()
        async with web.open_view(run) as url:
            async for event in events:
                if isinstance(event, RunIdle):
                    break
            await chromium.open(url)
            row = '#held .held-node[data-node="approve"]'
            await chromium.call(lambda: chromium.page.locator(row).wait_for())
            area = f"{row} textarea.outputs"
            complete = f"{row} button[data-action=complete]"
            # Not JSON: the editor says so and the button stays disabled.
            await chromium.call(lambda: chromium.page.locator(area).fill('{"approved_by": ana}'))
            disabled = await chromium.call(lambda: chromium.page.locator(complete).is_disabled())
            assert disabled
            problem = await text(chromium, f"{row} .json-error")
            assert problem.strip(), "the editor does not say what is wrong"
            assert not run.finished
            outputs = {"approved_by": "ana", "count": 3, "ratio": 0.5, "ok": True, "tags": [None]}
            await chromium.call(lambda: chromium.page.locator(area).fill(json.dumps(outputs)))
            assert not await chromium.call(lambda: chromium.page.locator(complete).is_disabled())
            await chromium.call(lambda: chromium.page.locator(complete).click())
            report = await run.wait()
            assert await wait_for(
                chromium, "document.querySelector('#run-state').textContent === 'succeeded'"
            )
            await chromium.screenshot("view-completed.png")
    assert report.success
    assert report.nodes["approve"].outputs == outputs  # 3 stays an int, 0.5 a float
    assert report.nodes["approve"].supplied
    assert_clean(chromium)


async def test_without_the_token_the_page_is_read_only_and_controls_are_refused(
    chromium: Any,
) -> None:
    specs = [NodeSpec("work", id="a", branch="gate")]
    async with Coordinator(registry({})).open_run(specs) as run:
        await run.submit(PauseBranch("gate"))
        async with web.open_view(run) as url:
            base = url.partition("/?")[0]
            await chromium.open(base + "/")
            await chromium.call(lambda: chromium.page.locator("#readonly").wait_for())
            assert "read-only" in (await text(chromium, "#readonly")).lower()
            resume = '.paused-branch[data-branch="gate"] button[data-action=resume]'
            shown = await chromium.call(lambda: chromium.page.locator(resume).count())
            assert shown == 0, "a control is offered without the token"
            # Sent from the page anyway (as a script in it could): refused, nothing changes.
            status = await chromium.call(
                lambda: chromium.page.evaluate(
                    """async () => (await fetch('/api/commands', {method: 'POST',
                        headers: {'Content-Type': 'application/json'},
                        body: JSON.stringify({type: 'ResumeBranch', branch: 'gate'})})).status"""
                )
            )
            assert status == 403
            assert run.graph.paused_branches == ("gate",)
            await chromium.screenshot("view-read-only.png")
            run.cancel()
    problems = [p for p in chromium.problems if "403" not in p]
    assert problems == []


async def test_a_rejected_command_shows_its_reason(chromium: Any) -> None:
    """Two people decide one held node: the second one's page shows why it was refused."""
    # "b" keeps the run going, so the refusal is the node's, not the run's end.
    later = trio.Event()
    specs = [NodeSpec("work", id="a", inputs={"fail": True}), NodeSpec("work", id="b")]
    coordinator = Coordinator(registry({"b": later}), on_failure="hold")
    async with coordinator.open_run(specs) as run:
        events = run.events()
        async with web.open_view(run) as url:
            async for event in events:
                if isinstance(event, NodeFailed):
                    break
            await chromium.open(url)
            row = '#held .held-node[data-node="a"]'
            await chromium.call(lambda: chromium.page.locator(row).wait_for())
            base, _, token = url.partition("/?token=")

            def first_the_other_person(route: Any) -> None:
                # The other person's Complete reaches the run just before this page's.
                other = httpx.post(
                    base + "/api/commands",
                    json={"type": "CompleteNode", "node_id": "a", "outputs": {"by": "bo"}},
                    headers={"authorization": f"Bearer {token}"},
                )
                assert other.status_code == 200
                route.continue_()

            await chromium.call(
                lambda: chromium.page.route("**/api/commands", first_the_other_person)
            )
            await chromium.call(
                lambda: chromium.page.locator(f"{row} button[data-action=complete]").click()
            )
            # Its row went away with the decision, so the banner says why it was refused.
            reason = await wait_for(
                chromium,
                "!document.querySelector('#notice').hidden"
                " && document.querySelector('#notice').textContent",
            )
            assert "CompleteNode a" in reason and "succeeded" in reason, reason
            await chromium.screenshot("view-rejected.png")
            later.set()
            report = await run.wait()
    assert report.nodes["a"].outputs == {"by": "bo"}
    # The browser logs the refused request itself; nothing else went wrong.
    assert [p for p in chromium.problems if "409" not in p] == []


async def test_a_retried_node_keeps_one_bar_in_one_lane(chromium: Any) -> None:
    """Two nodes side by side, each failing three times (held, then retried) before it
    succeeds, every attempt and failure seen by the page: the timeline has their two
    bars, in two lanes, not a lane per attempt."""
    attempts = {(node, k): trio.Event() for node in ("p", "q") for k in range(1, 5)}
    registry = dagtrio.ActionRegistry()

    @registry.action()
    async def work(ctx: dagtrio.NodeCtx) -> int:
        await attempts[(ctx.node_id, ctx.attempt)].wait()
        if ctx.attempt < 4:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return ctx.attempt

    def all_are(status: str, k: int) -> str:
        return (
            # ?. because the page may not have heard of a node yet: a predicate that
            # throws ends the wait instead of retrying it.
            f"['p', 'q'].every((id) => window.dagtrio.nodes.get(id)?.attempts === {k}"
            f" && window.dagtrio.nodes.get(id)?.status === '{status}')"
        )

    specs = [NodeSpec("work", id=node) for node in ("p", "q")]
    coordinator = Coordinator(registry, on_failure="hold")
    async with (
        coordinator.open_run(specs) as run,
        web.open_view(run) as url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        await chromium.open(url)
        base, _, token = url.partition("/?token=")
        for k in range(1, 5):
            assert await wait_for(chromium, all_are("running", k))
            attempts[("p", k)].set()
            attempts[("q", k)].set()
            if k < 4:
                assert await wait_for(chromium, all_are("failed", k))
                for node in ("p", "q"):
                    answer = await client.post(
                        base + "/api/commands",
                        json={"type": "RetryNode", "node_id": node},
                        headers={"authorization": f"Bearer {token}"},
                    )
                    assert answer.status_code == 200, answer.text
        report = await run.wait()
        assert report.success
        assert await wait_for(chromium, "window.dagtrio.state.state === 'finished'")
        info = await wait_for(chromium, "document.querySelector('#gantt-info').textContent")
        assert info.startswith("2 lanes"), info
    assert_clean(chromium)


async def test_ten_thousand_nodes_paint(chromium: Any) -> None:
    """A finished 10 000-node run: the page paints it (the figure is benchmarks')."""
    specs = [NodeSpec("work", id="root")] + [
        NodeSpec("work", id=f"n{i}", deps=("root",) if i < 100 else (f"n{i - 100}",))
        for i in range(10_000)
    ]
    async with Coordinator(registry({})).open_run(specs) as run:
        await run.wait()
        async with web.open_view(run) as url:
            await chromium.open(url)
            assert await wait_for(chromium, "window.dagtrio.firstPaintMs !== null")
            assert await wait_for(chromium, "window.dagtrio.nodes.size === 10001")
            # The details of one node, found by its id.
            await chromium.call(lambda: chromium.page.locator("#find").fill("n9999"))
            await chromium.call(lambda: chromium.page.locator("#find").press("Enter"))
            assert await wait_for(
                chromium, "document.querySelector('#details').dataset.node === 'n9999'"
            )
            await chromium.screenshot("view-10k.png")
    assert_clean(chromium)


async def test_the_approval_example_is_approved_in_the_browser(chromium: Any) -> None:
    """Issue 15's 'done when', as a person does it: dagtrio run approval.yaml --serve
    prints a URL; the page shows the held approval; typing the decision and clicking
    Complete lets the run finish, and the command exits 0."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "dagtrio", "run", "examples/dags/approval.yaml", "--serve"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        cwd=root,
    )
    try:
        assert process.stderr is not None
        seen = b""
        with trio.fail_after(60):  # a hang guard
            while not (found := re.search(rb"(http://\S+/\?token=\S+)", seen)):
                chunk = await process.stderr.receive_some()
                assert chunk, seen.decode()
                seen += chunk
        await chromium.open(found.group(1).decode())
        row = '#held .held-node[data-node="approve"]'
        await chromium.call(lambda: chromium.page.locator(row).wait_for())
        await chromium.call(
            lambda: chromium.page.locator(f"{row} textarea.outputs").fill('{"approved_by": "ana"}')
        )
        await chromium.call(
            lambda: chromium.page.locator(f"{row} button[data-action=complete]").click()
        )
        assert await wait_for(
            chromium, "document.querySelector('#run-state').textContent === 'succeeded'"
        )
        await chromium.screenshot("view-approval-example.png")
        with trio.fail_after(60):
            assert await process.wait() == 0
    finally:
        process.kill()
        await process.wait()
    assert_clean(chromium)
