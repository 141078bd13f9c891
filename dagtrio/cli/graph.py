"""``dagtrio graph``: check a DAG file, show its shape, export it, chart a run.

dagtrio graph FILE checks a DAG file (YAML or JSON) and reports every mistake with
its line: wrong types, unknown fields, duplicate ids, deps on unknown nodes, a cycle
(shown as its path), and actions the file's actions module does not register (when
that module imports here; a MODULE:NAME that names a function is called for its
registry, as dagtrio run would). For a valid graph it prints the width per level (how many
nodes could run at once) and the critical path: the chain of deps that takes the
longest, by each node's estimate (NodeSpec.estimate, in seconds; without estimates,
by the number of nodes). No schedule finishes the graph sooner.

dagtrio graph JOURNAL [RUN_ID] does the same for a run in a journal (the latest one
without RUN_ID), the critical path by the time each node really took, and --gantt
draws what ran when.

Example:
    dagtrio graph flow.yaml
    dagtrio graph flow.yaml --format mermaid -o flow.md
    dagtrio graph runs.db 3f2a --critical-path --gantt run.html

Exit status: 0 if the graph is valid; 2 if it is not (each problem on a line of its
own, file:line: path: message) or for bad arguments; 1 if the journal cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table as RichTable
from rich.text import Text

from .._model.graph import Shape, shape
from .._model.report import RunReport
from .._model.spec import MAIN_BRANCH
from .._specfile.export import FORMATS, Table, export
from .._specfile.resolve import BadReference, load_registry
from .._specfile.schema import DagFile, DagFileError, load_file
from . import gantt
from . import report as report_cli
from .args import FILE, import_igraph, keep_loaded, subcommand

__all__ = ["add_parser", "is_journal", "run"]

_PROG = "dagtrio graph"

#: levels listed in the width table; a deeper graph shows the first and the last
_LEVELS_SHOWN = 24


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``graph`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers,
        "graph",
        "check a DAG file, show its critical path, export it, chart a run",
        __doc__,
    )
    source = parser.add_argument(
        "source", type=Path, metavar="FILE|JOURNAL", help="a DAG file or a journal"
    )
    source.complete = FILE  # type: ignore[attr-defined]  # read by shtab
    parser.add_argument(
        "run_id", nargs="?", metavar="RUN_ID", help="a journal's run (default: the latest)"
    )
    parser.add_argument(
        "--format", choices=FORMATS, help="export the graph as DOT, GraphML, Mermaid or JSON"
    )
    output = parser.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="PATH",
        help="where --format writes (default: -, standard output)",
    )
    output.complete = FILE  # type: ignore[attr-defined]
    parser.add_argument(
        "--critical-path", action="store_true", help="list the nodes of the critical path"
    )
    gantt_file = parser.add_argument(
        "--gantt",
        type=Path,
        metavar="FILE.png|FILE.html",
        help="chart what ran when in a journaled run (.png needs matplotlib)",
    )
    gantt_file.complete = FILE  # type: ignore[attr-defined]
    parser.set_defaults(handler=run, parser=parser)
    return parser


def is_journal(path: Path) -> bool:
    """True if ``path`` is an SQLite file (a journal) rather than a DAG file."""
    try:
        with path.open("rb") as file:
            return file.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


class _Graph:
    """What the command works on, from a file or a journal."""

    def __init__(
        self,
        table: Table,
        weights: list[float],
        unit: str,
        report: RunReport | None,
        order: list[int] | None = None,
    ) -> None:
        self.order = order
        self.table = table
        self.weights = weights
        self.unit = unit  # "s" or "nodes"
        self.report = report


def _from_file(dag: DagFile) -> _Graph:
    specs = dag.specs
    edges = list(dag.edges)
    branches = [MAIN_BRANCH] * len(specs)
    position = {spec.id: i for i, spec in enumerate(specs)}
    for i in dag.order:  # deps first: a node without a branch takes its first dep's
        spec = specs[i]
        if spec.branch is not None:
            branches[i] = spec.branch
        elif spec.deps:
            branches[i] = branches[position[spec.deps[0]]]
    estimates = [spec.estimate for spec in specs]
    known = sum(estimate is not None for estimate in estimates)
    if known:
        weights = [estimate or 0.0 for estimate in estimates]
        unit = "s"
    else:
        weights = [1.0] * len(specs)
        unit = "nodes"
    table = Table(
        dag.dag,
        [str(spec.id) for spec in specs],
        [spec.action for spec in specs],
        branches,
        edges,
        {"estimate": estimates} if known else {},
    )
    return _Graph(table, weights, unit, None, list(dag.order))


def _from_report(report: RunReport) -> _Graph:
    records = list(report.nodes.values())
    index = {record.id: i for i, record in enumerate(records)}
    edges = [(index[dep], i) for i, record in enumerate(records) for dep in record.deps]
    durations = [record.duration for record in records]
    table = Table(
        report.dag_name,
        [record.id for record in records],
        [record.action for record in records],
        [record.branch for record in records],
        edges,
        {
            "status": [record.status.value for record in records],
            "duration": [None if d is None else round(d, 6) for d in durations],
        },
    )
    return _Graph(table, [d or 0.0 for d in durations], "s", report)


def _fail(message: str, status: int = 2) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace) -> int:
    """Carry out ``dagtrio graph`` with parsed ``args``; return the exit status."""
    source: Path = args.source
    import_igraph()
    journal = is_journal(source)
    if args.run_id is not None and not journal:
        return _fail(f"{source} is a DAG file; RUN_ID chooses a run of a journal")
    if args.gantt is not None and not journal:
        return _fail(
            "--gantt charts a run that happened: dagtrio graph JOURNAL [RUN_ID] --gantt FILE"
        )
    if args.gantt is not None:
        problem = gantt.refusal(args.gantt)
        if problem is not None:
            return _fail(problem)
    if args.output != "-" and args.format is None:
        return _fail("--output writes an export: give --format dot|graphml|mermaid|json")
    if journal:
        try:
            graph = _load_run(source, args.run_id)
        except (report_cli.Refusal, KeyError, ValueError) as exc:
            return _fail(" ".join(str(exc).split()), 1)
    else:
        try:
            dag = load_file(source)
            _check_actions(dag)
        except DagFileError as exc:
            print(exc, file=sys.stderr)
            count = len(exc.problems)
            print(
                f"{_PROG}: {source} is not a valid DAG file"
                f" ({count} problem{'' if count == 1 else 's'})",
                file=sys.stderr,
            )
            return 2
        graph = _from_file(dag)
    keep_loaded()
    table = graph.table
    found = shape(len(table.ids), table.edges, graph.weights, graph.order)
    summary = _summary_data(graph, found)
    to_stdout = args.format is not None and args.output == "-"
    # With the export on standard output, the summary goes to stderr, so that
    # `dagtrio graph f.yaml --format dot | dot -Tsvg` gets the graph alone.
    out = report_cli.console()
    if to_stdout:
        from rich.console import Console

        out = Console(stderr=True, highlight=False)
    if args.format is not None:
        text = export(table, args.format, summary=summary)
        if args.output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            try:
                Path(args.output).write_text(text, encoding="utf-8")
            except OSError as exc:
                return _fail(f"--output {args.output}: {exc.strerror or exc}")
    _print_shape(out, graph, found, source, critical=args.critical_path)
    if args.gantt is not None:
        assert graph.report is not None
        try:
            drawn = gantt.write(graph.report, args.gantt)
        except ValueError as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(f"--gantt {args.gantt}: {exc.strerror or exc}")
        out.print(f"gantt chart of {drawn:,} nodes: {args.gantt}", markup=False, soft_wrap=True)
    return 0


def _load_run(path: Path, run_id: str | None) -> _Graph:
    journal = report_cli.open_journal(path)
    try:
        runs = journal.runs()
        if not runs:
            raise report_cli.Refusal(f"journal {path} has no runs")
        if run_id is None:
            chosen = max(runs, key=lambda info: info.started_at).run_id
        else:
            try:
                chosen = report_cli.resolve_run_id(run_id, runs)
            except KeyError:
                raise report_cli.Refusal(
                    f"journal {path} has no run {run_id!r} (dagtrio report {path} lists them)"
                ) from None
        return _from_report(journal.report(chosen))
    finally:
        journal.close()


def _check_actions(dag: DagFile) -> None:
    """Unknown actions, if the file's actions module imports here (else a note)."""
    try:
        registry = load_registry(dag.actions, what="actions", directories=[dag.path.parent])
    except BadReference as exc:
        if not exc.imported:  # the module is not here: the file may still be right
            print(f"{_PROG}: note: actions not checked: {exc}", file=sys.stderr)
            return
        raise DagFileError(
            dag.path, [(dag.document.line(("actions",)), "actions", str(exc))]
        ) from None
    dag.check_actions(registry)


def _summary_data(graph: _Graph, found: Shape) -> dict[str, Any]:
    ids = graph.table.ids
    return {
        "levels": found.widths,
        "critical_path": [ids[v] for v in found.critical_path],
        "critical_length": found.critical_length,
        "critical_unit": graph.unit,
    }


def _length(value: float, unit: str) -> str:
    if unit == "nodes":
        return f"{value:.0f} node{'' if value == 1 else 's'}"
    return report_cli.format_duration(value)


def _print_shape(out: Any, graph: _Graph, found: Shape, source: Path, *, critical: bool) -> None:
    table = graph.table
    nodes, edges = len(table.ids), len(table.edges)
    kind = "run" if graph.report is not None else "valid"
    head = f"{source}: {kind}: {nodes:,} node{'' if nodes == 1 else 's'}, {edges:,} deps"
    if graph.report is not None:
        head = (
            f"{source}: run {graph.report.run_id} of {graph.report.dag_name}:"
            f" {nodes:,} nodes, {edges:,} deps"
        )
    widest = max(range(len(found.widths)), key=found.widths.__getitem__) if found.widths else 0
    head += (
        f", {len(found.widths):,} level{'' if len(found.widths) == 1 else 's'}"
        f" (widest: {found.widths[widest] if found.widths else 0:,} at level {widest})"
    )
    out.print(head, markup=False, soft_wrap=True)
    levels = RichTable(title="width per level", title_justify="left")
    levels.add_column("level", justify="right")
    levels.add_column("nodes", justify="right")
    levels.add_column("", no_wrap=True)
    biggest = max(found.widths, default=1)
    shown = _shown_levels(len(found.widths))
    previous = -1
    for level in shown:
        if level != previous + 1:
            levels.add_row("…", "", "")
        width = found.widths[level]
        levels.add_row(str(level), f"{width:,}", "█" * max(1, round(30 * width / biggest)))
        previous = level
    out.print(levels)
    path = [table.ids[v] for v in found.critical_path]
    basis = {
        "nodes": "counted in nodes: no node has an estimate",
        "s": "by each node's duration" if graph.report is not None else "by estimates",
    }[graph.unit]
    length = _length(found.critical_length, graph.unit)
    line = f"critical path: {length} ({basis}), {len(path):,} node{'' if len(path) == 1 else 's'}"
    if not critical:
        shown_path = " → ".join(path if len(path) <= 8 else [*path[:3], "…", *path[-3:]])
        out.print(f"{line}: {shown_path}", markup=False, soft_wrap=True)
        return
    out.print(f"{line}:", markup=False, soft_wrap=True)
    steps = RichTable()
    steps.add_column("node")
    steps.add_column("action")
    steps.add_column("time" if graph.unit == "s" else "", justify="right")
    steps.add_column("by then", justify="right")
    total = 0.0
    for v in found.critical_path:
        total += graph.weights[v]
        steps.add_row(
            Text(table.ids[v]),  # ids are not rich markup: "build[linux]" stays whole
            Text(table.actions[v]),
            _length(graph.weights[v], graph.unit) if graph.unit == "s" else "",
            _length(total, graph.unit),
        )
    out.print(steps)


def _shown_levels(count: int) -> Sequence[int]:
    if count <= _LEVELS_SHOWN:
        return range(count)
    half = _LEVELS_SHOWN // 2
    return [*range(half), *range(count - half, count)]
