"""``dagtrio report``: what the runs recorded in a journal did, run by run and node by node.

``dagtrio report JOURNAL`` lists the runs in a journal file (``SqliteJournal``), oldest
first. ``dagtrio report JOURNAL RUN_ID`` shows one run: its verdict, a table of its
nodes in the order they started (status, attempts, start and duration, branch, error)
and how many nodes ended in each status. RUN_ID may be any prefix that names exactly
one run. ``--json`` prints the same as JSON, for scripts: the list of runs, or the run's
``RunReport`` (read it back with ``RunReport.from_json``), full errors and outputs
included. A run still marked running either is running or its process died; it can be
finished with ``Coordinator.resume``.

The journal is only read: a missing file is an error, never a new empty journal.

Example:
    dagtrio report runs.db
    dagtrio report runs.db nightly-42 --status failed,skipped
    dagtrio report runs.db nightly-42 --json > nightly-42.json
Exit status: 0; 1 if the journal or the run cannot be read (missing or corrupt file, no
such run, an ambiguous RUN_ID); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._durable.records import StoredRun
from .._durable.sqlite import JournalError, RunInfo, SqliteJournal
from .._model.convert import converter
from .._model.report import NodeRecord, RunReport
from .._model.spec import NodeStatus
from .args import int_at_least, journal_argument, subcommand

__all__ = [
    "Refusal",
    "add_parser",
    "console",
    "format_duration",
    "history",
    "open_journal",
    "order_nodes",
    "print_report",
    "resolve_run_id",
    "run",
    "show_run",
]

_PROG = "dagtrio report"

#: longest error shown in a table cell; the full text is in ``--json``
_ERROR_WIDTH = 100

#: columns of a table written to a pipe or file (COLUMNS, when set, wins)
_PIPE_WIDTH = 200

#: the few run ids an ambiguous prefix error lists
_CANDIDATES_SHOWN = 10

_STATUS_STYLES = {
    NodeStatus.SUCCEEDED: "green",
    NodeStatus.FAILED: "bold red",
    NodeStatus.CANCELLED: "yellow",
    NodeStatus.SKIPPED: "dim",
    NodeStatus.RUNNING: "cyan",
    NodeStatus.READY: "cyan",
    NodeStatus.PENDING: "cyan",
}


#: the kinds of journal record that hold a node's outcome
_OUTCOME_KINDS = frozenset({"outcome", "cached", "held", "supplied"})


class Refusal(Exception):
    """Why a report cannot be shown: one line, printed on stderr with exit status 1."""


# ------------------------------------------------------------------ argument types


def _statuses(text: str) -> list[NodeStatus]:
    statuses = []
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        try:
            statuses.append(NodeStatus(name))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"unknown status {name!r}; choose from {', '.join(NodeStatus)}"
            ) from None
    return statuses


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers,
        "report",
        "what the runs in a journal did: list them, or one run per node",
        __doc__,
    )
    journal_argument(parser)
    parser.add_argument(
        "run_id",
        nargs="?",
        metavar="RUN_ID",
        help="show this run (or the one run whose id starts with it) instead of the list",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of tables: the runs as a list, or the run's RunReport",
    )
    parser.add_argument(
        "--status",
        type=_statuses,
        action="extend",
        metavar="STATUS[,STATUS...]",
        help="with RUN_ID: show only the nodes in these statuses (repeatable); "
        f"one of {', '.join(NodeStatus)}",
    )
    parser.add_argument(
        "--limit",
        type=int_at_least(1),
        metavar="N",
        help="with RUN_ID: show at most N nodes (the counts still cover them all)",
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


# ------------------------------------------------------------------ reading


def open_journal(path: Path) -> SqliteJournal:
    """A journal for an existing file, read-only; `Refusal` for what SQLite would
    silently create (a missing or empty file) or cannot read."""
    # sqlite3.connect creates a missing file, and SqliteJournal writes its schema into an
    # empty one: a typo in the path would leave a new journal behind and report no runs.
    if not path.exists():
        raise Refusal(f"journal {path}: no such file")
    if path.is_dir():
        raise Refusal(f"journal {path}: is a folder, not a journal file")
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise Refusal(f"journal {path}: cannot read it: {exc.strerror or exc}") from None
    if empty:
        raise Refusal(f"journal {path}: not a dagtrio journal (the file is empty)")
    return SqliteJournal(path, read_only=True)


def resolve_run_id(run_id: str, runs: Iterable[RunInfo]) -> str:
    """The id of the one run that is ``run_id`` or starts with it, like git's short ids.

    An exact id wins over longer ids it is a prefix of (``run-1`` beside ``run-10``).
    Raises `KeyError` if no run matches and `ValueError`, naming the candidates, if
    several do.
    """
    ids = [info.run_id for info in runs]
    if run_id in ids:
        return run_id
    matches = [candidate for candidate in ids if candidate.startswith(run_id)]
    if not matches:
        raise KeyError(run_id)
    if len(matches) > 1:
        shown = ", ".join(matches[:_CANDIDATES_SHOWN])
        more = len(matches) - _CANDIDATES_SHOWN
        if more > 0:
            shown += f" and {more} more"
        raise ValueError(f"run id {run_id!r} is ambiguous: it starts {shown}")
    return matches[0]


def order_nodes(nodes: Iterable[NodeRecord]) -> list[NodeRecord]:
    """Nodes in the order they started, then those that never did, as the graph has them.

    The sort is stable, so nodes that started at the same moment, and nodes that never
    started (skipped, cancelled before starting, still waiting), keep the order in which
    they were added to the graph.
    """
    return sorted(nodes, key=lambda node: (node.started_at is None, node.started_at or 0.0))


# ------------------------------------------------------------------ formatting


def format_duration(seconds: float | None) -> str:
    """``seconds`` for a human: ``12.3 ms``, ``4.56 s``, ``2m 05s``, ``1h 02m``; ``-`` if None."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def _local_time(timestamp: float | None) -> str:
    # Local time without the UTC offset: it is the same on every line of one table.
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


def _short_error(error: str | None, width: int = _ERROR_WIDTH) -> str:
    """The first line of ``error``, at most ``width`` characters, ``…`` if cut."""
    if not error:
        return ""
    lines = error.strip().splitlines() or [""]
    first = lines[0]
    if len(first) > width:
        return first[: width - 1] + "…"
    return first + (" …" if len(lines) > 1 else "")


def _run_status(info: RunInfo) -> Text:
    if info.status != "finished":
        return Text(info.status, style="cyan")
    return Text(info.status)


def _verdict(info: RunInfo) -> Text:
    if info.status != "finished":
        return Text("unfinished: still running, or its process died (resumable)", style="cyan")
    if info.success:
        return Text("succeeded", style="green")
    return Text("failed", style="bold red")


def _success(info: RunInfo) -> Text:
    if info.success is None:
        return Text("-", style="dim")
    return Text("yes", style="green") if info.success else Text("no", style="bold red")


def _node_status(node: NodeRecord) -> Text:
    text = Text(node.status.value, style=_STATUS_STYLES.get(node.status, ""))
    if node.cached:
        text.append(" (cached)", style="dim")
    if node.supplied:
        text.append(" (supplied)", style="dim")
    if node.held:
        text.append(" (held)", style="bold")
    return text


def _runs_table(runs: Sequence[RunInfo]) -> Table:
    table = Table()
    table.add_column("run id", no_wrap=True)
    table.add_column("DAG")
    table.add_column("status", no_wrap=True)
    table.add_column("success", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("nodes", justify="right", no_wrap=True)
    table.add_column("error")
    for info in runs:
        table.add_row(
            Text(info.run_id),
            Text(info.dag_name),
            _run_status(info),
            _success(info),
            _local_time(info.started_at),
            format_duration(_span(info.started_at, info.finished_at)),
            f"{info.nodes:,}",
            Text(_short_error(info.error)),
        )
    return table


def _header(info: RunInfo, report: RunReport) -> Text:
    rows: list[tuple[str, str | Text]] = [
        ("run", report.run_id),
        ("DAG", report.dag_name),
        ("status", _run_status(info)),
        ("verdict", _verdict(info)),
        ("started", _local_time(report.started_at)),
        ("finished", _local_time(report.finished_at)),
        ("duration", format_duration(_span(report.started_at, report.finished_at))),
    ]
    # Plain lines rather than a grid, which pads every line to the widest value.
    width = len("duration") + 2
    if report.error:
        # The run's own error is shown whole (there is only one, and it says why the run
        # failed), its later lines indented under the first.
        error = report.error.strip().replace("\n", "\n" + " " * width)
        rows.append(("error", Text(error, style="red")))
    return Text("\n").join(Text.assemble((key.ljust(width), "bold"), value) for key, value in rows)


def _nodes_table(report: RunReport, nodes: Sequence[NodeRecord]) -> Table:
    table = Table()
    table.add_column("node", no_wrap=True)
    table.add_column("action")
    table.add_column("branch")
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("start", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("error")
    for node in nodes:
        start = _span(report.started_at, node.started_at)
        table.add_row(
            Text(node.id),
            Text(node.action),
            Text(node.branch),
            _node_status(node),
            str(node.attempts),
            "-" if start is None else "+" + format_duration(start),
            format_duration(node.duration),
            Text(_short_error(node.error)),
        )
    return table


def _summary(report: RunReport) -> str:
    counts = report.counts()
    parts = [f"{counts[status]} {status.value}" for status in NodeStatus if status in counts]
    total = len(report.nodes)
    text = f"{total:,} node{'' if total == 1 else 's'}"
    if parts:
        text += ": " + ", ".join(parts)
    cached = sum(node.cached for node in report.nodes.values())
    if cached:
        text += f"; {cached} cached (outputs reused, not run)"
    supplied = sum(node.supplied for node in report.nodes.values())
    if supplied:
        text += f"; {supplied} supplied (outputs given by hand)"
    held = sum(node.held for node in report.nodes.values())
    if held:
        text += f"; {held} held for a decision (RetryNode or CompleteNode)"
    return text


def history(stored: StoredRun) -> list[tuple[float | None, str, str]]:
    """What happened to the nodes that ended more than once, and why, in order.

    A node ends more than once when a person decided (`RetryNode`, `CompleteNode`)
    or a resume re-ran it: each of its outcomes, each decision and each re-run is
    one step ``(time, node or "", what)``. Empty for a run that nobody steered.
    """
    outcomes: dict[str, int] = {}
    for _, kind, row in stored.records:
        if kind in _OUTCOME_KINDS:
            outcomes[row["node"]] = outcomes.get(row["node"], 0) + 1
    steps: list[tuple[float | None, str, str]] = []
    for _, kind, row in stored.records:
        if kind == "rerun":
            plan = json.loads(row["data"])
            asked = []
            if plan["failed"]:
                asked.append("what failed")
            if plan["from"]:
                asked.append("from " + ", ".join(plan["from"]))
            if plan["outputs"]:
                asked.append("outputs for " + ", ".join(plan["outputs"]))
            steps.append((None, "", "re-run: " + "; ".join(asked)))
        elif kind == "command":
            data = json.loads(row["data"])
            if data.get("type") == "RetryNode":
                inputs = " with new inputs" if data.get("inputs") is not None else ""
                steps.append((None, data["node_id"], f"retried by RetryNode{inputs}"))
        elif kind in ("held", "supplied") or (kind in _OUTCOME_KINDS and outcomes[row["node"]] > 1):
            what = row["status"]
            if kind != "outcome":
                what += f" ({kind})"
            what += f" after {row['attempts']} attempt{'' if row['attempts'] == 1 else 's'}"
            if row["error"]:
                what += f": {_short_error(row['error'])}"
            steps.append((row["finished_at"], row["node"], what))
    return steps


def _history_table(report: RunReport, steps: Sequence[tuple[float | None, str, str]]) -> Table:
    table = Table(title="history (decisions and re-runs)", title_justify="left")
    table.add_column("at", justify="right", no_wrap=True)
    table.add_column("node", no_wrap=True)
    table.add_column("what")
    for at, node, what in steps:
        start = _span(report.started_at, at)
        table.add_row("" if start is None else "+" + format_duration(start), node, Text(what))
    return table


# ------------------------------------------------------------------ running


def console() -> Console:
    """A console on the current stdout, wide enough not to cut lines in a pipe."""
    # Made per call, not per module, so that output goes to whatever sys.stdout is now
    # (pytest's capsys replaces it).
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        # Rich assumes 80 columns for a pipe or file, which cuts 32-character run ids and
        # errors short; a report saved or grepped should keep them whole. Tables take only
        # the width they need, so this costs nothing for narrow ones.
        console.width = _PIPE_WIDTH
    return console


def run(args: argparse.Namespace) -> int:
    """Carry out ``dagtrio report`` with parsed ``args``; return the exit status."""
    problem = None
    if args.run_id == "":
        problem = "RUN_ID is empty (leave it out to list the runs)"
    elif args.run_id is None and (args.status or args.limit):
        problem = "--status and --limit choose the nodes of one run: give a RUN_ID"
    elif args.json and (args.status or args.limit):
        problem = "--status and --limit shape the node table; --json prints the whole run"
    if problem is not None:
        print(f"{_PROG}: error: {problem}", file=sys.stderr)
        return 2
    try:
        journal = open_journal(args.journal)
        try:
            if args.run_id is None:
                return _list_runs(journal, as_json=args.json)
            return _show_run(
                journal, args.run_id, as_json=args.json, statuses=args.status, limit=args.limit
            )
        finally:
            journal.close()
    except (Refusal, JournalError) as exc:
        # A JournalError names the file and says why it cannot be read; one line of it
        # is what a user needs, not a traceback.
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader left early (``| head``) and has what it wanted. Point stdout at
        # devnull, as rich does, or Python fails again flushing it at exit.
        with suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


def _list_runs(journal: SqliteJournal, *, as_json: bool) -> int:
    runs = journal.runs()
    if as_json:
        print(json.dumps(converter.unstructure(runs, list[RunInfo]), indent=2))
        return 0
    out = console()
    if not runs:
        out.print(f"journal {journal.path} has no runs", markup=False, soft_wrap=True)
        return 0
    out.print(_runs_table(runs))
    unfinished = sum(info.status != "finished" for info in runs)
    line = f"{len(runs):,} run{'' if len(runs) == 1 else 's'}"
    if unfinished:
        line += f", {unfinished} still running or left unfinished (resumable)"
    out.print(line, markup=False, soft_wrap=True)
    return 0


def print_report(report: RunReport, *, limit: int = 100) -> None:
    """Print a run's nodes (up to ``limit``: those that did not succeed first) and
    its summary, for a report that may not be in any journal (``dagtrio run``)."""
    out = console()
    nodes = order_nodes(report.nodes.values())
    shown = nodes
    if len(nodes) > limit:
        unwell = [node for node in nodes if node.status is not NodeStatus.SUCCEEDED]
        shown = unwell[:limit]
    if shown:
        out.print(_nodes_table(report, shown))
    if len(shown) < len(nodes):
        out.print(
            f"showing {len(shown):,} of {len(nodes):,} nodes (those that did not succeed)",
            markup=False,
            soft_wrap=True,
        )
    out.print(_summary(report), markup=False, soft_wrap=True)


def show_run(journal: SqliteJournal, run_id: str) -> None:
    """Print one run of ``journal`` as ``dagtrio report JOURNAL RUN_ID`` does."""
    _show_run(journal, run_id, as_json=False, statuses=None, limit=None)


def _show_run(
    journal: SqliteJournal,
    run_id: str,
    *,
    as_json: bool,
    statuses: Sequence[NodeStatus] | None,
    limit: int | None,
) -> int:
    runs = journal.runs()
    try:
        run_id = resolve_run_id(run_id, runs)
    except KeyError:
        raise Refusal(
            f"journal {journal.path} has no run {run_id!r} (dagtrio report {journal.path} "
            "lists them)"
        ) from None
    except ValueError as exc:
        raise Refusal(f"journal {journal.path}: {exc}") from None
    info = next(info for info in runs if info.run_id == run_id)
    try:
        report: RunReport = journal.report(run_id)
    except KeyError as exc:  # pruned by another process since we listed the runs
        raise Refusal(str(exc.args[0]) if exc.args else repr(exc)) from None
    if as_json:
        print(report.to_json(indent=2))
        return 0
    out = console()
    out.print(_header(info, report), soft_wrap=True)
    nodes = order_nodes(report.nodes.values())
    wanted = frozenset(statuses or NodeStatus)
    shown = [node for node in nodes if node.status in wanted]
    matching = len(shown)
    if limit is not None:
        shown = shown[:limit]
    out.print()
    if shown:
        out.print(_nodes_table(report, shown))
    if len(shown) < len(nodes):
        note = f"showing {len(shown):,} of {len(nodes):,} nodes"
        if statuses:
            note += f" ({matching:,} {'/'.join(dict.fromkeys(s.value for s in statuses))})"
        out.print(note, markup=False, soft_wrap=True)
    out.print(_summary(report), markup=False, soft_wrap=True)
    steps = history(journal.stored_run(run_id))
    if steps:
        out.print()
        out.print(_history_table(report, steps))
    return 0
