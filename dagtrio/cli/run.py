"""``dagtrio run``: run a DAG file, with a live display, then the per-node table.

dagtrio run FILE checks the file as dagtrio graph does (every mistake with its line),
imports its actions and hooks, and runs it. On a terminal a live display shows the
counts by status, a bar, what is running and the latest failures; then the table of
nodes. --json prints the run's report as JSON instead; --quiet prints neither.

With --journal PATH every outcome is recorded as it happens, so a run that stops
(Ctrl-C, a crash, a power cut) can go on: the command to resume it is printed. Giving
the same --run-id again resumes that run (the nodes are the journal's, the hooks are
the file's); add --failed to run again what failed in a run that finished.

Ctrl-C once shuts the run down gracefully: nothing new starts, and running nodes get
--grace seconds (default 10) to finish, counted down on the display. Ctrl-C again
cancels them at once.

With --serve a live view is served for the length of the run (its URL, with the
token that allows steering, is printed): the graph, each node's details, a Gantt
chart, the event log, and controls to approve a paused branch, complete or retry a
held node, or shut the run down. A run that comes to rest waiting for a decision then
waits for it in the view instead of stopping.

Example:
    dagtrio run flow.yaml
    dagtrio run approval.yaml --serve
    dagtrio run flow.yaml --journal runs.db --max-parallel 8
    dagtrio run flow.yaml --journal runs.db --run-id nightly --failed

Exit status: 0 if every node succeeded; 1 if the run did not succeed (or stopped
waiting for a decision: a held failure, a paused branch); 2 for bad input (the file,
its actions or hooks, an argument); 130 if interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
from collections import deque
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import attrs
import trio
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from .._durable.sqlite import JournalError, SqliteJournal
from .._errors import InvalidGraphError
from .._model import events as ev
from .._model.report import RunReport
from .._runtime.coordinator import Coordinator
from .._runtime.run import Run
from .._specfile.resolve import BadReference, load_hooks, load_registry
from .._specfile.schema import DagFile, DagFileError, Problem, load_file
from . import report as report_cli
from .args import FILE, address, import_igraph, int_at_least, keep_loaded, subcommand, web_module

__all__ = ["add_parser", "run"]

_PROG = "dagtrio run"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``run`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers,
        "run",
        "run a DAG file with a live display",
        __doc__,
    )
    file = parser.add_argument("file", type=Path, metavar="FILE", help="a DAG file (YAML/JSON)")
    file.complete = FILE  # type: ignore[attr-defined]  # read by shtab
    journal = parser.add_argument(
        "--journal", type=Path, metavar="PATH", help="record the run in this journal"
    )
    journal.complete = FILE  # type: ignore[attr-defined]
    parser.add_argument(
        "--run-id", metavar="ID", help="the run's id (an unfinished run of it is resumed)"
    )
    parser.add_argument(
        "--failed",
        action="store_true",
        help="with --run-id of a journaled run: run again what failed, was skipped or cancelled",
    )
    parser.add_argument(
        "--max-parallel",
        type=int_at_least(1),
        metavar="N",
        help="run at most N actions at once (default: the file's options, else 64)",
    )
    parser.add_argument(
        "--grace",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="on Ctrl-C, how long running nodes may take to finish (default: 10)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run's report as JSON, not tables"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no display and no table: the exit status says"
    )
    parser.add_argument(
        "--serve",
        nargs="?",
        type=address,
        const=("127.0.0.1", 0),
        metavar="[HOST:]PORT",
        help="serve a live view in the browser, to watch and steer the run (prints its URL;"
        " default: 127.0.0.1 and a free port)",
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


class _BadInput(Exception):
    """Bad input found before the run starts: printed as it is, exit status 2."""


# ------------------------------------------------------------------ the live display


@attrs.define
class _Progress:
    """What the display shows, kept from the run's events (cheap per event)."""

    total: int = 0
    done: int = 0
    counts: dict[str, int] = attrs.Factory(dict)
    running: dict[str, float] = attrs.Factory(dict)  # node -> when it started
    failures: deque[str] = attrs.Factory(lambda: deque(maxlen=5))
    waiting: str | None = None  # what a run at rest waits for
    stopping_at: float | None = None  # the grace's end, once Ctrl-C was pressed
    cancelling: bool = False

    def note(self, event: ev.ExecutionEvent, now: float) -> None:
        kind = type(event)
        if kind is ev.NodeAdded:
            self.total += 1
        elif kind is ev.NodeStarted:
            self.running[event.node.node] = now  # type: ignore[attr-defined]
        elif kind in _ENDINGS:
            node = event.node.node  # type: ignore[attr-defined]
            self.running.pop(node, None)
            self.done += 1
            name = _ENDINGS[kind]
            self.counts[name] = self.counts.get(name, 0) + 1
            if kind is ev.NodeFailed:
                error = " ".join(str(event.error).split())  # type: ignore[attr-defined]
                self.failures.append(f"{node}: {error[:120]}")
        elif kind is ev.HookFailed:
            error = " ".join(str(event.error).split())  # type: ignore[attr-defined]
            self.failures.append(f"hook {event.hook}: {error[:120]}")  # type: ignore[attr-defined]
        elif kind is ev.NodeRetrying:
            self.running.pop(event.node.node, None)  # type: ignore[attr-defined]
            self.counts["retrying"] = self.counts.get("retrying", 0) + 1


_ENDINGS: dict[type, str] = {
    ev.NodeCompleted: "succeeded",
    ev.NodeFailed: "failed",
    ev.NodeCancelled: "cancelled",
    ev.NodeSkipped: "skipped",
}
_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "skipped": "dim"}


def _render(progress: _Progress, title: str, now: float, started: float) -> Group:
    head = Text.assemble((title, "bold"), f"  {now - started:.1f}s")
    bar = ProgressBar(total=max(progress.total, 1), completed=progress.done, width=40)
    line = Text.assemble(
        f" {progress.done:,}/{progress.total:,} nodes  ",
        *(
            (f"{name} {progress.counts[name]:,}  ", _STYLES.get(name, ""))
            for name in ("succeeded", "failed", "cancelled", "skipped", "retrying")
            if progress.counts.get(name)
        ),
        (f"running {len(progress.running):,}", "cyan"),
    )
    parts: list[Any] = [head, Group(bar, line)]
    if progress.running:
        longest = sorted(progress.running.items(), key=lambda item: item[1])[:5]
        shown = ", ".join(f"{node} ({now - since:.1f}s)" for node, since in longest)
        more = len(progress.running) - len(longest)
        parts.append(Text(f"running: {shown}" + (f" and {more:,} more" if more > 0 else "")))
    if progress.failures:
        parts.append(Text("latest failures:", style="red"))
        parts.extend(Text(f"  {failure}") for failure in progress.failures)
    if progress.cancelling:
        parts.append(Text("cancelling the running nodes…", style="bold yellow"))
    elif progress.stopping_at is not None:
        left = math.ceil(max(0.0, progress.stopping_at - now))  # "0s" only at the end
        parts.append(
            Text(
                f"shutting down: running nodes have {left}s left to finish"
                " (Ctrl-C again cancels them now)",
                style="bold yellow",
            )
        )
    return Group(*parts)


# ------------------------------------------------------------------ the command


def _prepare(
    args: argparse.Namespace,
) -> tuple[DagFile, Coordinator, SqliteJournal | None, str | None]:
    dag = load_file(args.file)
    directories = [args.file.parent]
    try:
        registry = load_registry(dag.actions, what="actions", directories=directories)
    except BadReference as exc:
        raise dag.error([Problem(("actions",), str(exc))]) from None
    try:
        hooks = load_hooks(dag.hooks, directories=directories)
    except BadReference as exc:
        raise dag.error([Problem(("hooks", exc.index or 0), str(exc))]) from None
    dag.check_actions(registry)
    if args.failed and (args.journal is None or args.run_id is None):
        raise _BadInput("--failed runs parts of a journaled run again: give --journal and --run-id")
    journal = None
    resume: str | None = None
    if args.journal is not None:
        target = args.journal
        if target.is_dir() or not target.parent.is_dir():
            raise _BadInput(f"--journal {target}: not a file in an existing folder")
        if target.exists() and target.resolve() == args.file.resolve():
            raise _BadInput(f"--journal {target} is the DAG file itself")
        try:
            journal = SqliteJournal(args.journal)
        except JournalError as exc:
            raise _BadInput(" ".join(str(exc).split())) from None
        if args.run_id is not None:
            known_runs = {info.run_id: info for info in journal.runs()}
            info = known_runs.get(args.run_id)
            if info is not None:
                if info.status == "finished" and not args.failed:
                    journal.close()
                    verdict = "succeeded" if info.success else "did not succeed"
                    raise _BadInput(
                        f"run {args.run_id} in {args.journal} has finished ({verdict}); add"
                        " --failed to run what failed again, or choose another --run-id"
                    )
                resume = args.run_id
            elif args.failed:
                journal.close()
                raise _BadInput(f"--failed: {args.journal} has no run {args.run_id!r}")
    options = dag.options
    try:
        coordinator = Coordinator(
            registry,
            hooks,
            max_parallel=args.max_parallel or options.max_parallel,
            event_capacity=options.event_capacity,
            command_capacity=options.command_capacity,
            on_failure=options.on_failure,
            hook_errors=options.hook_errors,
            order=options.order,
            limits=options.limits,
            journal=journal,
        )
    except (TypeError, ValueError) as exc:
        if journal is not None:
            journal.close()
        raise _BadInput(f"{args.file}: options: {exc}") from None
    return dag, coordinator, journal, resume


@attrs.define
class _Outcome:
    report: RunReport | None = None
    run_id: str = ""
    interrupted: bool = False
    waiting: ev.RunIdle | None = None


async def _main(
    args: argparse.Namespace,
    dag: DagFile,
    coordinator: Coordinator,
    resume: str | None,
    display: Console | None,
    web: Any = None,
) -> _Outcome:
    outcome = _Outcome()
    progress = _Progress()
    started = trio.current_time()
    live: Live | None = None
    opened_runs: list[Run] = []
    # The signal receiver covers the whole run, its end included: a Ctrl-C while the
    # last cancelled actions wind down must not become a KeyboardInterrupt traceback.
    with trio.open_signal_receiver(signal.SIGINT) as signals, trio.CancelScope() as process:
        async with trio.open_nursery() as guard:
            guard.start_soon(_interrupts, signals, opened_runs, args.grace, progress, outcome)
            if resume is not None:
                opened = coordinator.open_run(
                    resume=resume, rerun="failed" if args.failed else None
                )
            else:
                opened = coordinator.open_run(dag.specs, dag_name=dag.dag, run_id=args.run_id)
            async with opened as run, AsyncExitStack() as view:
                url = ""
                opened_runs.append(run)
                outcome.run_id = run.run_id
                if web is not None:
                    host, port = args.serve
                    url = await view.enter_async_context(web.open_view(run, host=host, port=port))
                    print(f"{_PROG}: live view: {url}", file=sys.stderr)
                if resume is not None:
                    # Restored nodes send no NodeAdded: start from what the run holds.
                    stats = run.statistics()
                    progress.total = stats.nodes
                    progress.done = stats.nodes - stats.unfinished
                title = f"{dag.dag} · run {run.run_id}"
                if display is not None:
                    live = Live(console=display, auto_refresh=False, transient=False)
                    live.start()
                try:
                    async with trio.open_nursery() as nursery:
                        if live is not None:
                            nursery.start_soon(_refresh, live, progress, title, started)
                        if not run.finished:
                            async for event in run.events():
                                progress.note(event, trio.current_time())
                                if isinstance(event, ev.RunIdle) and web is not None:
                                    # The view is where a person decides: wait for them.
                                    print(f"{_PROG}: {_decision(event)}: {url}", file=sys.stderr)
                                elif isinstance(event, ev.RunIdle):
                                    # Nobody can decide from the shell. With a journal the
                                    # run stays resumable, as if the process stopped here.
                                    outcome.waiting = event
                                    if coordinator.journal is not None:
                                        process.cancel()
                                    else:
                                        run.cancel()
                                    break
                        nursery.cancel_scope.cancel()
                finally:
                    if live is not None:
                        live.update(_render(progress, title, trio.current_time(), started))
                        live.refresh()
                        live.stop()
            guard.cancel_scope.cancel()
    if opened_runs and (outcome.waiting is None or coordinator.journal is None):
        outcome.report = opened_runs[0].report()
    return outcome


def _decision(idle: ev.RunIdle) -> str:
    waiting = [f"held {', '.join(idle.held)}"] if idle.held else []
    if idle.branches:
        waiting.append(f"paused {', '.join(idle.branches)}")
    return f"waiting for a decision ({'; '.join(waiting) or 'nothing can run'}) in the view"


async def _refresh(live: Live, progress: _Progress, title: str, started: float) -> None:
    while True:
        live.update(_render(progress, title, trio.current_time(), started))
        live.refresh()
        await trio.sleep(0.1)


async def _interrupts(
    signals: Any, runs: list[Run], grace: float, progress: _Progress, outcome: _Outcome
) -> None:
    async for _ in signals:
        outcome.interrupted = True
        if not runs:
            raise KeyboardInterrupt  # nothing started yet: stop here
        run = runs[0]
        if progress.stopping_at is None:
            progress.stopping_at = trio.current_time() + grace
            print(
                f"{_PROG}: interrupted: shutting down, running nodes have {grace:g}s"
                " (Ctrl-C again cancels them)",
                file=sys.stderr,
            )
            await run.shutdown(grace)
        elif not progress.cancelling:
            progress.cancelling = True
            print(f"{_PROG}: cancelling the running nodes", file=sys.stderr)
            run.cancel()
        else:
            print(f"{_PROG}: still cancelling: waiting for the actions to stop", file=sys.stderr)


def _how_to_go_on(args: argparse.Namespace, outcome: _Outcome) -> str | None:
    """The command that goes on with a journaled run that did not succeed."""
    if args.journal is None:
        return None
    again = _again(args, outcome.run_id)
    if outcome.waiting is not None:
        return None  # _waiting said how
    if outcome.report is None:
        return f"{_PROG}: the run can go on: {again}"
    if outcome.report.success:
        return None
    return f"{_PROG}: to run what did not succeed again: {again} --failed"


def _again(args: argparse.Namespace, run_id: str) -> str:
    return shlex.join(
        ["dagtrio", "run", str(args.file), "--journal", str(args.journal), "--run-id", run_id]
    )


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _errors(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [line for inner in exc.exceptions for line in _errors(inner)]
    return [f"{type(exc).__name__}: {' '.join(str(exc).split())}"]


def run(args: argparse.Namespace) -> int:
    """Carry out ``dagtrio run`` with parsed ``args``; return the exit status."""
    import_igraph()
    try:
        dag, coordinator, journal, resume = _prepare(args)
    except DagFileError as exc:
        print(exc, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"{_PROG}: {args.file} is not a valid DAG file"
            f" ({count} problem{'' if count == 1 else 's'})",
            file=sys.stderr,
        )
        return 2
    except _BadInput as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    keep_loaded()
    display: Console | None = None
    if not args.quiet:
        stderr = Console(stderr=True, highlight=False)
        if stderr.is_terminal:
            display = stderr
    if resume is not None and not args.quiet:
        print(f"{_PROG}: resuming run {resume} from {args.journal}", file=sys.stderr)
    web = None
    if args.serve is not None:
        web = web_module(_PROG)
        if web is None:
            if journal is not None:
                journal.close()
            return 2
    try:
        outcome = trio.run(_main, args, dag, coordinator, resume, display, web)
    except InvalidGraphError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    except JournalError as exc:
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        if args.journal is not None and args.run_id is not None:
            print(f"{_PROG}: the run can go on: {_again(args, args.run_id)}", file=sys.stderr)
        return 130
    except Exception as exc:
        leaves = _leaves(exc)
        if args.serve is not None and all(isinstance(leaf, OSError) for leaf in leaves):
            # The view could not listen (its port is taken): bad input, nothing ran.
            for leaf in leaves:
                print(f"{_PROG}: error: {leaf}", file=sys.stderr)
            return 2
        if leaves and all(isinstance(leaf, InvalidGraphError) for leaf in leaves):
            # The graph was refused before anything ran (a use over a limit, say).
            for leaf in leaves:
                print(f"{_PROG}: error: {leaf}", file=sys.stderr)
            return 2
        # A hook that failed the run (hook_errors="fail"), or the journal: one line per
        # error, not a traceback; the journal keeps the run's report.
        for line in _errors(exc):
            print(f"{_PROG}: error: the run failed: {line}", file=sys.stderr)
        return 1
    finally:
        if journal is not None:
            journal.close()
    report = outcome.report
    if report is None and args.json and outcome.waiting is not None and args.journal:
        reader = SqliteJournal(args.journal, read_only=True)
        try:
            report = reader.report(outcome.run_id)
        finally:
            reader.close()
    if outcome.waiting is not None:
        print(_waiting(args, outcome), file=sys.stderr)
    if report is not None and (args.json or not args.quiet):
        if args.json:
            print(report.to_json(indent=2))
        else:
            report_cli.print_report(report)
    go_on = _how_to_go_on(args, outcome)
    if go_on is not None:
        print(go_on, file=sys.stderr)
    if outcome.interrupted:
        return 130
    return 0 if report is not None and report.success else 1


def _waiting(args: argparse.Namespace, outcome: _Outcome) -> str:
    idle = outcome.waiting
    assert idle is not None
    lines = [f"{_PROG}: the run came to rest waiting for a decision nobody can make here:"]
    if idle.held:
        lines.append(f"  held (failed, on_failure='hold'): {', '.join(idle.held)}")
    if idle.branches:
        lines.append(f"  paused branches: {', '.join(idle.branches)}")
    if args.journal is None:
        lines.append("  the run was cancelled; with --journal it would stay resumable")
        return "\n".join(lines)
    resume = shlex.join(
        ["dagtrio", "resume", str(args.journal), outcome.run_id, "--actions", str(args.file)]
    )
    lines.append(f"  it stays resumable in {args.journal}:")
    if idle.held:
        lines.append(f"    supply a result:  {resume} --output {idle.held[0]}=JSON")
        lines.append(f"    run it again:     {resume} --failed")
    if idle.branches:
        lines.append("    resume a paused branch from Python: run.submit(ResumeBranch(...))")
    return "\n".join(lines)
