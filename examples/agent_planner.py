"""An LLM agent as a DAG that grows while it runs: planner, approval and token budget.

Run it with ``python examples/agent_planner.py`` (after ``pip install .``).

The agent is asked why a test is flaky. It starts as a single ``llm`` node. The model is
a fake one, answering from a fixed script (`SCRIPT`) keyed by turn number, and the
tools act on a fake world (`TOOLS`), so every run prints the same story:

- turn 1 asks for two searches and a ``read_file`` of a file that has moved: the tool
  fails, and since the run holds failures (``on_failure="hold"``) the agent waits for a
  person, who retries it with the right path (`RetryNode` with new inputs);
- turn 2 asks for a ``run_shell`` command that is marked *dangerous*, plus one slow
  search;
- turn 3 would give the final answer, with no tool calls.

Three hooks steer the run, as a pipeline in this order:

- `Planner` turns each completed ``llm`` node into one `AddNodes` batch: one node per
  tool call, each on its own branch ``main/tool-N``; a ``continue`` node on ``main``
  that waits for all of them; and the next ``llm`` turn after it. For a dangerous call
  it pauses ``main/tool-N`` in the same command list, *before* adding the node;
- `ApprovalDesk` notices dangerous tools as they are added and files an approval
  request in the event stream for the person to see;
- `TokenBudget` adds up the tokens every node reports and, once the budget is spent,
  cancels every tool branch that has not finished.

Beside the run, a separate Trio task plays the person who approves: it reads its own
``run.events()`` stream, sees ``BranchPaused``, thinks it over, and submits
``ResumeBranch``; it sees a held ``NodeFailed`` and submits ``RetryNode`` with the path
it knows, or supplies the tool's result by hand (`CompleteNode`) when it knows none.

``main(journal=path, crash_while_held=True)`` tells the same story with a crash in the
middle: the process "dies" while the tool is held; a new coordinator resumes the run
from the journal, which is still held (``RunIdle`` says so again), and the person, who
has found the file in the meantime, supplies its contents; the agent goes on. The
hooks derive what they need from the graph rather than from memory, so they pick up
where the crashed ones left off.

What to look for in the output:

- ``added`` lines right after each ``llm`` node is done: the graph grows while it runs;
- ``read_file-3`` fails, ``idle`` says it is held, the person retries it with another
  path, and ``continue-1`` goes on once it is done;
- ``paused`` comes before ``run_shell-4`` is even added, and ``run_shell-4`` starts only
  after the ``person`` line and ``resumed``, while ``search-5`` (another branch) runs on
  meanwhile;
- when ``run_shell-4`` finishes, the budget is spent: ``search-5`` is cancelled while
  it is still running, so ``continue-2`` and ``llm-3`` are skipped and the agent stops
  after two turns (``main(token_budget=5000)`` lets it reach its final answer);
- the table at the end is built from the run's `RunReport`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import trio

import dagtrio
from dagtrio import (
    ActionRegistry,
    AddNodes,
    CancelBranch,
    CommandRejectedError,
    CompleteNode,
    Coordinator,
    CustomEvent,
    EmitEvent,
    EventHook,
    ExecutionEvent,
    ExecutorCommand,
    GraphView,
    HookContext,
    NodeCtx,
    NodeSpec,
    PauseBranch,
    PermanentError,
    ResumeBranch,
    RetryNode,
    Run,
    RunFinishedError,
    RunReport,
    SqliteJournal,
)

TASK = "Why does tests/test_upload.py fail one run in ten?"
#: tokens the agent may spend; turn 2's shell command is what spends them
TOKEN_BUDGET = 2000
#: how long the person takes to decide on a dangerous tool call (seconds)
THINKING_TIME = 0.4
BUDGET_REASON = "token budget spent"
TOOL_BRANCH_PREFIX = "main/tool-"


# ----------------------------------------------------------------------- the fake world


@attrs.frozen
class ToolCall:
    """One tool call in a model's answer."""

    tool: str
    args: str
    dangerous: bool = False


@attrs.frozen
class ModelReply:
    """What the fake model answers at one turn: tool calls, or a final answer."""

    thought: str
    tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    answer: str | None = None


#: the fake model's answers, by turn
SCRIPT: dict[int, ModelReply] = {
    1: ModelReply(
        thought="find the test and the code it exercises",
        tokens=300,
        tool_calls=(
            ToolCall("search", "test_upload flaky"),
            ToolCall("search", "upload retry timeout"),
            ToolCall("read_file", "tests/test_upload.py"),
        ),
    ),
    2: ModelReply(
        thought="reproduce it from a clean cache; look for a known issue meanwhile",
        tokens=500,
        tool_calls=(
            ToolCall("run_shell", "rm -rf .cache && pytest test_upload.py", True),
            ToolCall("search", "issues: upload timeout"),
        ),
    ),
    3: ModelReply(
        thought="the traceback and issue #412 agree",
        tokens=400,
        answer="test_upload races the 0.5 s retry timer; wait on the upload event instead",
    ),
}

#: what each tool call costs and returns: (tool, args) -> (seconds, tokens, result)
TOOLS: dict[tuple[str, str], tuple[float, int, str]] = {
    ("search", "test_upload flaky"): (0.10, 200, "3 hits, first: tests/test_upload.py"),
    ("search", "upload retry timeout"): (0.20, 200, "client/upload.py: RETRY_AFTER = 0.5"),
    # The model asks for tests/test_upload.py, which has moved: see MOVED.
    ("read_file", "tests/net/test_upload.py"): (0.05, 400, "def test_upload(): ... sleep(0.5)"),
    ("run_shell", "rm -rf .cache && pytest test_upload.py"): (
        0.20,
        700,
        "1 failed: timed out after 0.5 s",
    ),
    # Slow on purpose: it is still running when the budget runs out.
    ("search", "issues: upload timeout"): (1.00, 300, "#412 upload retry races the timeout"),
}


#: what the person knows about files that moved (old path -> new path)
MOVED = {"tests/test_upload.py": "tests/net/test_upload.py"}
#: what the person pastes in when they supply a tool's result by hand
BY_HAND = {"result": "def test_upload(): ... sleep(0.5)  (pasted by hand)", "tokens": 400}


# ----------------------------------------------------------------------- actions

registry = ActionRegistry()


@registry.action()
async def llm(ctx: NodeCtx) -> dict[str, Any]:
    """One model call: what the script says for this turn, after some "inference" time."""
    turn = ctx.inputs["turn"]
    # A real model would read the task plus the tool results in ``ctx.upstream``.
    await trio.sleep(0.15)
    return {"turn": turn, **attrs.asdict(SCRIPT[turn])}


async def use_tool(ctx: NodeCtx, tool: str) -> dict[str, Any]:
    if (tool, ctx.inputs["args"]) not in TOOLS:
        await trio.sleep(0.05)
        # Trying again would give the same answer: fail at once, whatever try_count.
        raise PermanentError(f"no such file: {ctx.inputs['args']}")
    seconds, tokens, result = TOOLS[tool, ctx.inputs["args"]]
    # trio.sleep, never time.sleep: the tests run this on a MockClock that jumps ahead.
    await trio.sleep(seconds)
    return {"result": result, "tokens": tokens}


@registry.action()
async def search(ctx: NodeCtx) -> dict[str, Any]:
    return await use_tool(ctx, "search")


@registry.action()
async def read_file(ctx: NodeCtx) -> dict[str, Any]:
    return await use_tool(ctx, "read_file")


@registry.action()
async def run_shell(ctx: NodeCtx) -> dict[str, Any]:
    return await use_tool(ctx, "run_shell")


@registry.action(name="continue")
async def continue_turn(ctx: NodeCtx) -> dict[str, Any]:
    """Gather one turn's tool results into the transcript the next model call reads."""
    await trio.lowlevel.checkpoint()
    return {"transcript": {node: out["result"] for node, out in ctx.upstream.items()}}


# ----------------------------------------------------------------------- hooks


def is_tool_branch(branch: str) -> bool:
    return branch.startswith(TOOL_BRANCH_PREFIX)


class Planner(EventHook):
    """Turns each model answer into the next slice of the graph, in one `AddNodes` batch.

    A batch is applied whole or not at all, so a ``continue`` node never waits on half
    of a turn's tool calls.
    """

    def __init__(self) -> None:
        #: numbers the tool branches across turns: main/tool-1, main/tool-2, ...
        self._tools = 0

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> list[ExecutorCommand]:
        if not isinstance(event, dagtrio.NodeCompleted):
            return []
        node = event.node.node
        if ctx.graph.spec(node).action != "llm":
            return []
        reply = event.outcome.outputs
        if not reply["tool_calls"]:
            return []  # a final answer: the graph stops growing and the run ends
        if f"continue-{reply['turn']}" in ctx.graph:
            # Planned already: this completion is delivered again after a resume.
            return []
        # Counted from the graph, not remembered: a planner resumed after a crash
        # numbers the next tools as the crashed one would have.
        self._tools = sum(is_tool_branch(ctx.graph.branch(n)) for n in ctx.graph)
        pauses, specs = self.plan_turn(node, reply["turn"], reply["tool_calls"])
        # The pauses come first. Once AddNodes is applied, a tool whose only dep (this
        # llm node) has succeeded is ready, and the coordinator starts it as soon as it
        # has applied this command list: a later hook that paused it on NodeAdded would
        # be too late. A paused branch that has no node yet holds nodes added to it.
        return [*pauses, AddNodes(specs)]

    def plan_turn(
        self, llm_node: str, turn: int, calls: list[Mapping[str, Any]]
    ) -> tuple[list[PauseBranch], list[NodeSpec]]:
        pauses = []
        tools = []
        for call in calls:
            self._tools += 1
            branch = f"{TOOL_BRANCH_PREFIX}{self._tools}"
            if call["dangerous"]:
                reason = f"approve {call['tool']}: {call['args']}"
                pauses.append(PauseBranch(branch, reason=reason))
            tools.append(
                NodeSpec(
                    call["tool"],
                    id=f"{call['tool']}-{self._tools}",
                    deps=[llm_node],
                    inputs={"args": call["args"], "dangerous": call["dangerous"]},
                    branch=branch,
                )
            )
        tool_ids = [spec.id for spec in tools if spec.id is not None]
        # Without an explicit branch, `continue` would join its first dep's branch, and
        # a command on that one tool would act on the whole turn; the turn is "main"'s.
        gather_id = f"continue-{turn}"
        gather = NodeSpec("continue", id=gather_id, deps=tool_ids, branch="main")
        next_turn = NodeSpec(
            "llm", id=f"llm-{turn + 1}", deps=[gather_id], inputs={"turn": turn + 1}
        )
        return pauses, [*tools, gather, next_turn]


class ApprovalDesk(EventHook):
    """Files an approval request for every dangerous tool as it joins the graph.

    It does not pause anything itself: by the time a hook sees ``NodeAdded`` the node
    may already be running (see `Planner.handle`). It only makes the request visible,
    as a `CustomEvent` that every later hook and reader sees in the run's order.
    """

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> ExecutorCommand | None:
        if not isinstance(event, dagtrio.NodeAdded) or not event.spec.inputs.get("dangerous"):
            return None
        request = {
            "node": event.node.node,
            "branch": event.branch,
            "command": f"{event.spec.action} {event.spec.inputs['args']!r}",
        }
        return EmitEvent(CustomEvent("approval-requested", request))


class TokenBudget(EventHook):
    """Counts the tokens every node reports; once ``limit`` is spent, stops all tool work.

    It runs after the planner, so when an ``llm`` answer spends the budget, the tools
    that answer asked for are already in ``ctx.graph`` and get cancelled too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self.exhausted = False

    async def handle(self, ctx: HookContext, event: ExecutionEvent) -> list[ExecutorCommand]:
        if not isinstance(event, dagtrio.NodeCompleted):
            return []
        # Counted from the graph, not added up event by event: a completion delivered
        # again after a resume is not spent twice, nor one from before it forgotten.
        self.spent = tokens_spent(ctx.graph)
        if self.exhausted or self.spent < self.limit:
            return []
        self.exhausted = True
        notice = CustomEvent("budget-spent", {"spent": self.spent, "limit": self.limit})
        cancels = [
            CancelBranch(branch, reason=BUDGET_REASON)
            for branch in unfinished_tool_branches(ctx.graph)
        ]
        return [EmitEvent(notice), *cancels]


def tokens_spent(graph: GraphView) -> int:
    """Tokens reported by every node that has succeeded so far."""
    total = 0
    for node in graph:
        if graph.status(node) is dagtrio.NodeStatus.SUCCEEDED:
            outputs = graph.outputs(node)
            if isinstance(outputs, Mapping):
                total += outputs.get("tokens", 0)
    return total


def unfinished_tool_branches(graph: GraphView) -> list[str]:
    """Tool branches with a node that has not finished, in the order they were added."""
    branches: dict[str, None] = {}
    for node in graph:
        branch = graph.branch(node)
        if is_tool_branch(branch) and not graph.status(node).is_final:
            branches[branch] = None
    return list(branches)


# ----------------------------------------------------------------------- the application


@attrs.frozen
class Approval:
    """One decision of the person, with times in seconds since the run started."""

    branch: str
    request: str
    paused_at: float
    decided_at: float
    applied: bool


@attrs.frozen
class AgentOutcome:
    """What `main` returns: the report plus what the application saw along the way."""

    report: RunReport
    initial_nodes: int
    #: every event of the run, in order, with the seconds since the start when it was read
    events: tuple[tuple[float, ExecutionEvent], ...]
    approvals: tuple[Approval, ...]
    tokens_spent: int
    token_budget: int

    @property
    def answer(self) -> str | None:
        """The model's final answer, if the agent got that far."""
        for record in self.report.outputs().values():
            if isinstance(record, Mapping) and record.get("answer"):
                return str(record["answer"])
        return None


class Console:
    """The live log: one line per interesting event, with the time since the run started."""

    def __init__(self, *, verbose: bool) -> None:
        self.verbose = verbose
        self.start = trio.current_time()

    def elapsed(self) -> float:
        return trio.current_time() - self.start

    def line(self, kind: str, subject: str, detail: str = "") -> None:
        if self.verbose:
            print(f"{self.elapsed():6.2f}s  {kind:<9} {subject:<13} {detail}".rstrip())


def describe(event: ExecutionEvent) -> tuple[str, str, str] | None:
    """(kind, subject, detail) for an event worth a log line, else ``None``."""
    match event:
        case dagtrio.NodeAdded(node=ref, spec=spec, branch=branch):
            after = f" after {', '.join(spec.deps)}" if spec.deps else ""
            return "added", ref.node, f"on {branch}{after}"
        case dagtrio.NodeStarted(node=ref):
            return "start", ref.node, ""
        case dagtrio.NodeCompleted(node=ref, outcome=outcome):
            return "done", ref.node, short_outputs(outcome.outputs)
        case dagtrio.NodeCancelled(node=ref, reason=reason):
            return "cancelled", ref.node, reason
        case dagtrio.NodeSkipped(node=ref, reason=reason):
            return "skipped", ref.node, reason
        case dagtrio.NodeFailed(node=ref, error=error):
            return "failed", ref.node, error
        case dagtrio.BranchPaused(branch=branch, reason=reason, known=known):
            # known=False: no node is on the branch yet; the pause will hold it when added.
            return "paused", branch, (reason or "") + ("" if known else " (tool not added yet)")
        case dagtrio.BranchResumed(branch=branch):
            return "resumed", branch, ""
        case dagtrio.BranchCancelled(branch=branch, reason=reason):
            return "cancelled", branch, reason or ""
        case dagtrio.CustomEvent(name="approval-requested", payload=request):
            return "approval", request["node"], f"requested for {request['command']}"
        case dagtrio.CustomEvent(name="budget-spent", payload=budget):
            return "budget", "", f"{budget['spent']} of {budget['limit']} tokens spent"
        case dagtrio.RunIdle(branches=branches, held=held):
            waiting = [*(f"branch {b}" for b in branches), *(f"held {n}" for n in held)]
            return "idle", "", f"waiting for {', '.join(waiting)}"
        case dagtrio.NodeRetrying(node=ref, delay=0.0):
            return "retry", ref.node, "runs again"
        case dagtrio.RunResumed():
            return "resumed", "", "the run, from its journal"
        case dagtrio.CommandRejected(reason=reason):
            return "rejected", "", reason
    return None


def short_outputs(outputs: Any) -> str:
    """A few words about a node's outputs, for the log and the table."""
    if not isinstance(outputs, Mapping):
        return ""
    if "transcript" in outputs:
        return f"{len(outputs['transcript'])} tool results gathered"
    if outputs.get("answer"):
        return f"answer: {outputs['answer'][:40]}... ({outputs['tokens']} tok)"
    if "tool_calls" in outputs:
        calls = ", ".join(call["tool"] for call in outputs["tool_calls"])
        return f"calls {calls} ({outputs['tokens']} tok)"
    return f"{outputs['result'][:36]} ({outputs['tokens']} tok)"


async def person(
    run: Run,
    console: Console,
    approvals: list[Approval],
    moved: Mapping[str, str],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The human in the loop: approves each paused tool branch after thinking it over.

    The stream is opened here, in the task that reads it, so it follows the run to its
    end. Each decision is taken in a task of its own, so the stream keeps being read
    while the person thinks: a stream nobody reads would slow the whole run down.
    """
    async with run.events() as events, trio.open_nursery() as desk:
        task_status.started()
        deciding: set[str] = set()
        async for event in events:
            if isinstance(event, dagtrio.BranchPaused) and is_tool_branch(event.branch):
                desk.start_soon(decide, run, console, approvals, event)
            elif isinstance(event, dagtrio.RunIdle):
                # A failed tool call held for a decision (on_failure="hold"): fix it.
                for node in event.held:
                    if node not in deciding:
                        deciding.add(node)
                        desk.start_soon(fix, run, console, node, moved, deciding)


async def fix(
    run: Run, console: Console, node: str, moved: Mapping[str, str], deciding: set[str]
) -> None:
    """Decide about one held tool call: retry it with the right path if the person
    knows one (``moved``), else paste the result in by hand."""
    record = run.graph.record(node)
    console.line("person", node, f"looks at the failure: {record.error}")
    await trio.sleep(THINKING_TIME)
    args = run.graph.spec(node).inputs["args"]
    try:
        if args in moved:
            console.line("person", node, f"the file moved: retry with {moved[args]}")
            inputs = {**run.graph.spec(node).inputs, "args": moved[args]}
            await run.submit(RetryNode(node, inputs=inputs))
        else:
            console.line("person", node, "supplies the result by hand")
            await run.submit(CompleteNode(node, BY_HAND))
    except (CommandRejectedError, RunFinishedError) as exc:
        console.line("person", node, f"too late: {exc}")
    finally:
        deciding.discard(node)


async def decide(
    run: Run, console: Console, approvals: list[Approval], paused: dagtrio.BranchPaused
) -> None:
    paused_at = console.elapsed()
    console.line("person", paused.branch, "reads the request and thinks it over")
    await trio.sleep(THINKING_TIME)
    decided_at = console.elapsed()
    console.line("person", paused.branch, "approves: it only clears a cache, then runs one test")
    try:
        await run.submit(ResumeBranch(paused.branch))
    except (CommandRejectedError, RunFinishedError) as exc:
        # The budget may cancel the branch (or the run may end) while the person thinks.
        console.line("person", paused.branch, f"too late: {exc}")
        applied = False
    else:
        applied = True
    approvals.append(Approval(paused.branch, paused.reason or "", paused_at, decided_at, applied))


async def main(
    *,
    verbose: bool = True,
    token_budget: int = TOKEN_BUDGET,
    journal: Path | None = None,
    crash_while_held: bool = False,
) -> AgentOutcome:
    """Run the agent on `TASK`, log it live, print the report; return what happened.

    With a ``journal``, the run is recorded; ``crash_while_held`` then stops the
    process's part of it while a tool call is held (as if the process died) and
    resumes it from the journal with new hooks, where the person supplies the result.
    """
    if crash_while_held and journal is None:
        raise ValueError("crash_while_held needs a journal to resume from")
    first_turn = [NodeSpec("llm", id="llm-1", inputs={"task": TASK, "turn": 1})]
    approvals: list[Approval] = []
    events: list[tuple[float, ExecutionEvent]] = []
    wall_start = time.perf_counter()
    console = Console(verbose=verbose)
    console.line("task", "", TASK)

    def agent_coordinator() -> tuple[Coordinator, TokenBudget]:
        budget = TokenBudget(token_budget)
        hooks = [Planner(), ApprovalDesk(), budget]
        store = SqliteJournal(journal) if journal is not None else None
        return Coordinator(registry, hooks=hooks, on_failure="hold", journal=store), budget

    async def follow(run: Run, *, crash: bool, moved: Mapping[str, str] = MOVED) -> None:
        # Subscribe first thing in the body: the stream then shows the whole run.
        log = run.events()
        async with trio.open_nursery() as nursery:
            # start (not start_soon): the person is listening before we read on.
            if not crash:
                await nursery.start(person, run, console, approvals, moved)
            async with log:
                async for event in log:
                    events.append((console.elapsed(), event))
                    line = describe(event)
                    if line is not None:
                        console.line(*line)
                    if crash and isinstance(event, dagtrio.RunIdle) and event.held:
                        console.line("crash", "", "the process dies while a tool is held")
                        nursery.cancel_scope.cancel()
                        return

    coordinator, budget = agent_coordinator()
    if crash_while_held:
        with trio.CancelScope() as process:
            async with coordinator.open_run(first_turn, dag_name="agent", run_id="agent") as run:
                await follow(run, crash=True)
                process.cancel()  # everything of this "process" goes, the run with it
        # A new process: the person found the file meanwhile and pastes it in.
        coordinator, budget = agent_coordinator()
        async with coordinator.open_run(resume="agent") as run:
            await follow(run, crash=False, moved={})
    else:
        async with coordinator.open_run(first_turn, dag_name="agent") as run:
            await follow(run, crash=False)
    report = await run.wait()
    outcome = AgentOutcome(
        report, len(first_turn), tuple(events), tuple(approvals), budget.spent, token_budget
    )
    if verbose:
        print_report(outcome, time.perf_counter() - wall_start)
    return outcome


def print_report(outcome: AgentOutcome, wall_time: float) -> None:
    """A table of every node from the report, in the order they joined, then a summary."""
    report = outcome.report
    print()
    header = f"{'node':<11} {'branch':<12} {'status':<10} {'tries':>5} {'time':>6}  outputs / error"
    print(header)
    print("-" * len(header))
    for record in report.nodes.values():
        duration = "-" if record.duration is None else f"{record.duration:.2f}s"
        detail = short_outputs(record.outputs) or shorten(record.error or "", 56)
        print(
            f"{record.id:<11} {record.branch:<12} {record.status.value:<10} "
            f"{record.attempts:>5} {duration:>6}  {detail}"
        )
    statuses = ", ".join(f"{n} {status.value}" for status, n in report.counts().items())
    grown = len(report.nodes) - outcome.initial_nodes
    approved = sum(approval.applied for approval in outcome.approvals)
    run_time = (report.finished_at or report.started_at) - report.started_at
    print()
    if outcome.answer is not None:
        print(f"answer: {outcome.answer}")
    else:
        print("no answer: the agent was stopped before its last turn")
    print(
        f"success={report.success}  {len(report.nodes)} nodes, {grown} added while running "
        f"({statuses})"
    )
    print(
        f"{approved} approved by the person  {outcome.tokens_spent} tokens of "
        f"{outcome.token_budget}  {run_time:.2f}s on the run's clock, {wall_time:.2f}s wall"
    )


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


if __name__ == "__main__":
    trio.run(main)
