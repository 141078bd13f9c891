"""``dagtrio resume``: finish a journaled run, or run parts of it again, from the shell.

dagtrio resume JOURNAL RUN_ID --actions MODULE finishes a run whose process died
(Coordinator.resume). --failed runs again every node that failed, was skipped or was
cancelled; --from NODE runs NODE and everything below it again (repeatable); --output
NODE=JSON completes NODE with that value instead of running it (repeatable), and runs
what is below it again. The new attempts are added to the same run: dagtrio report
JOURNAL RUN_ID shows them after the earlier ones.

--actions names the module that registers the run's actions, as MODULE or
MODULE:NAME (NAME: an ActionRegistry, or a function that returns one; without it, the
module's only ActionRegistry), or the DAG file the run came from (its actions and its
hooks). The current directory is importable, as with python -m. The run goes on with
the options it was recorded with (max_parallel, on_failure); with a module, hooks are
not resumed (resume from Python, or give the DAG file, to keep them).

Example:
    dagtrio resume runs.db 3f2a --actions myflow.actions --failed
    dagtrio resume runs.db 3f2a --actions myflow.actions --output fetch='{"rows": 12}'
    dagtrio resume runs.db release --actions flow.yaml --output approve='"yes"'

A run that comes to rest waiting for a person (a failure held by on_failure="hold", a
paused branch) is left as it is, resumable, and the command says what waits and how to
go on, with exit status 1: nobody can decide from here.

Exit status: 0 if the run succeeded; 1 if it did not, waits for a decision, or the
journal or run cannot be resumed; 2 for bad arguments (an unknown node, invalid JSON,
an actions module that does not import); 130 if interrupted (the run stays resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import trio

from .._actions.registry import ActionRegistry
from .._durable.sqlite import JournalError, SqliteJournal
from .._errors import InvalidGraphError
from .._hooks.hook import EventHook
from .._model.events import RunIdle
from .._model.report import RunReport
from .._runtime.coordinator import Coordinator
from .._specfile.resolve import BadReference, load_hooks, load_registry
from .._specfile.schema import DagFileError, load_file
from . import report as report_cli
from .args import int_at_least, journal_argument, subcommand

__all__ = ["add_parser", "run"]

_PROG = "dagtrio resume"


def _output(text: str) -> tuple[str, Any]:
    node, sep, value = text.partition("=")
    if not sep or not node:
        raise argparse.ArgumentTypeError(f"expected NODE=JSON, got {text!r}")
    try:
        return node, json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"the value for {node!r} is not JSON ({exc.msg} at column {exc.colno}): {value!r}"
            " (a string is written with quotes: NODE='\"text\"')"
        ) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``resume`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers,
        "resume",
        "finish a journaled run, or run parts of it again",
        __doc__,
    )
    journal_argument(parser)
    parser.add_argument(
        "run_id", metavar="RUN_ID", help="the run (or the one run whose id starts with it)"
    )
    parser.add_argument(
        "--actions",
        required=True,
        metavar="MODULE[:NAME]|FILE",
        help="the module that registers the run's actions, or the run's DAG file",
    )
    parser.add_argument(
        "--failed", action="store_true", help="run again what failed, was skipped or cancelled"
    )
    parser.add_argument(
        "--from",
        dest="start",
        action="append",
        default=[],
        metavar="NODE",
        help="run NODE and everything below it again (repeatable)",
    )
    parser.add_argument(
        "--output",
        dest="outputs",
        type=_output,
        action="append",
        default=[],
        metavar="NODE=JSON",
        help="complete NODE with this value instead of running it (repeatable)",
    )
    parser.add_argument(
        "--max-parallel",
        type=int_at_least(1),
        metavar="N",
        help="run at most N actions at once (default: as the run was recorded)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run's report as JSON instead of tables"
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


def _actions(reference: str) -> tuple[ActionRegistry, list[EventHook]]:
    """The registry (and, for a DAG file, the hooks) that ``--actions`` names."""
    path = Path(reference)
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        if not path.is_file():
            raise BadReference(f"--actions {reference}: no such DAG file")
        try:
            dag = load_file(path)
        except DagFileError as exc:
            raise BadReference(f"--actions {reference}: not a valid DAG file:\n{exc}") from None
        directories = [path.parent]
        registry = load_registry(dag.actions, what="actions", directories=directories)
        return registry, load_hooks(dag.hooks, directories=directories)
    return load_registry(reference), []


def _waiting(args: argparse.Namespace, run_id: str, idle: RunIdle) -> str:
    """What to tell a person whose run stopped at rest, waiting for a decision."""
    again = f"dagtrio resume {args.journal} {run_id} --actions {args.actions}"
    lines = [f"{_PROG}: run {run_id} is waiting for a decision; it stays resumable."]
    if idle.held:
        lines.append(
            f"  held (failed, on_failure='hold'): {', '.join(idle.held)}; run them again"
            f" with {again} --failed, or supply one with {again} --output NODE=JSON"
        )
    if idle.branches:
        lines.append(
            f"  paused branches: {', '.join(idle.branches)}; resume them from Python"
            " (run.submit(ResumeBranch(...)))"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Carry out ``dagtrio resume`` with parsed ``args``; return the exit status."""
    try:
        registry, hooks = _actions(args.actions)
        outputs = dict(args.outputs)
        if len(outputs) < len(args.outputs):
            raise BadReference("--output names the same node twice")
        if not args.journal.exists():
            raise JournalError(f"journal {args.journal} does not exist")
        reader = SqliteJournal(args.journal, read_only=True)
        try:
            run_id = report_cli.resolve_run_id(args.run_id, reader.runs())
            options = reader.stored_run(run_id).options
        finally:
            reader.close()
        recorded = options.get("hooks") or []
        if recorded and not hooks:
            print(
                f"{_PROG}: note: run {run_id} was recorded with hooks ({', '.join(recorded)});"
                " they are not resumed (give the DAG file as --actions to resume them)",
                file=sys.stderr,
            )
        journal = SqliteJournal(args.journal)
    except BadReference as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (JournalError, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        if isinstance(exc, KeyError):
            message = f"journal {args.journal} has no run {args.run_id!r}"
        print(f"{_PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 1
    coordinator = Coordinator(
        registry,
        hooks,
        max_parallel=args.max_parallel or options.get("max_parallel", 64),
        on_failure=options.get("on_failure", "skip"),
        hook_errors=options.get("hook_errors", "fail"),
        journal=journal,
    )

    async def resume() -> tuple[RunReport | None, RunIdle | None]:
        # Nobody can decide from here: a run that comes to rest waiting for a person
        # (a held failure, a paused branch) is left as it is, resumable, not waited on.
        idle: RunIdle | None = None
        report: RunReport | None = None
        with trio.CancelScope() as process:
            async with coordinator.open_run(
                resume=run_id,
                rerun="failed" if args.failed else None,
                rerun_from=args.start,
                outputs=outputs,
            ) as run:
                if not run.finished:
                    async for event in run.events():
                        if isinstance(event, RunIdle):
                            idle = event
                            process.cancel()
                            break
            report = run.report()
        return (None, idle) if idle is not None else (report, None)

    try:
        report, idle = trio.run(resume)
    except InvalidGraphError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    except JournalError as exc:
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"{_PROG}: interrupted; the run stays resumable: dagtrio resume {args.journal}"
            f" {run_id} --actions {args.actions}",
            file=sys.stderr,
        )
        return 130
    finally:
        journal.close()
    if report is None:
        assert idle is not None
        print(_waiting(args, run_id, idle), file=sys.stderr)
        return 1
    if args.json:
        print(report.to_json(indent=2))
    else:
        reader = SqliteJournal(args.journal, read_only=True)
        try:
            report_cli.show_run(reader, run_id)
        finally:
            reader.close()
    return 0 if report.success else 1
