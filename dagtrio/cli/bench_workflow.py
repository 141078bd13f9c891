"""``dagtrio bench --shape workflow``: makespan ÷ lower bound of real workflows, by order.

Each ``--workflow FILE.json`` (a WfCommons instance) runs in virtual time (see
`dagtrio.bench.workflow`) at each ``--max-parallel`` slot count, with dagtrio in FIFO
and critical-path order and with ``trio-minimal`` (FIFO) beside them. The table gives
the lower bound and each makespan divided by it; 1.00 is a perfect schedule.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..bench import plot as plotting
from ..bench.results import machine_info
from ..bench.workflow import ORDERS, Workflow, WorkflowError, load_workflow, makespan
from ..bench.workflow import minimal_makespan as minimal

__all__ = ["DEFAULT_SLOTS", "MINIMAL", "refusal", "run"]

#: Slot counts measured when ``--max-parallel`` is not given.
DEFAULT_SLOTS = (16, 32, 64, 128)

#: The baseline's column.
MINIMAL = "trio-minimal"

# Options of the throughput benchmark that mean nothing here: refused, not ignored, so
# that nobody believes a figure was measured with them.
_NOT_HERE = {
    "compare": "--compare",
    "journal": "--journal",
    "runners": "--runners",
    "in_process": "--in-process",
}


def refusal(args: argparse.Namespace) -> str | None:
    """Why ``args`` cannot run as a workflow benchmark, or None."""
    if not args.workflow:
        return "--shape workflow needs one --workflow FILE.json or more"
    for name, option in _NOT_HERE.items():
        if getattr(args, name):
            return f"{option} does not apply to --shape workflow"
    if args.action != "noop" or args.hooks or args.readers or args.executor != "inline":
        return (
            "--action, --hooks, --readers and --executor do not apply to --shape workflow "
            "(each task sleeps its own runtime, in virtual time)"
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Measure every workflow at every slot count; print, then write --json and --plot."""
    console = Console(stderr=True) if args.json == "-" else Console()
    try:
        workflows = [load_workflow(path) for path in args.workflow]
    except WorkflowError as exc:
        print(f"dagtrio bench: error: {exc}", file=sys.stderr)
        return 2
    slots = list(args.max_parallel or DEFAULT_SLOTS)
    results = [measure(workflow, slots) for workflow in workflows]
    for result in results:
        console.print(
            f"{result['name']}: {result['tasks']:,} tasks, critical path "
            f"{result['critical_path_s']:,.1f} s, work {result['work_s']:,.1f} s",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        console.print(table(result))
    console.print(
        "  each figure is makespan ÷ lower bound, lower bound = max(critical path, work ÷ "
        "slots); 1.00 is perfect. Runs are in virtual time (Trio's MockClock), so they "
        "are exact and the same on every machine.",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    _write(args, console, results)
    return 0


def measure(workflow: Workflow, slots: Sequence[int]) -> dict[str, Any]:
    """Makespans of ``workflow`` at each slot count, in each order and by trio-minimal."""
    rows = []
    for count in slots:
        spans: dict[str, float] = {order: makespan(workflow, count, order) for order in ORDERS}
        spans[MINIMAL] = minimal(workflow, count)
        rows.append(
            {"slots": count, "lower_bound_s": workflow.lower_bound(count), "makespan_s": spans}
        )
    return {
        "name": workflow.name,
        "tasks": len(workflow.ids),
        "critical_path_s": workflow.critical_path,
        "work_s": workflow.work,
        "slots": rows,
    }


def table(result: dict[str, Any]) -> Table:
    """One row per slot count: the lower bound and each makespan ÷ it."""
    grid = Table()
    grid.add_column("slots", justify="right")
    grid.add_column("lower bound", justify="right")
    columns = (*ORDERS, MINIMAL)
    for name in columns:
        grid.add_column(name, justify="right")
    grid.add_column("fifo ÷ critical_path", justify="right")
    for row in result["slots"]:
        bound = row["lower_bound_s"]
        spans = row["makespan_s"]
        gain = spans["fifo"] / spans["critical_path"] if spans["critical_path"] else 1.0
        grid.add_row(
            str(row["slots"]),
            f"{bound:,.1f} s",
            *(f"{spans[name] / bound:.3f}" if bound else "-" for name in columns),
            f"{gain:.3f}",
        )
    return grid


def _write(args: argparse.Namespace, console: Console, results: list[dict[str, Any]]) -> None:
    if args.json is not None:
        data = {
            "schema": "dagtrio-bench-workflow/1",
            "command": shlex.join(["dagtrio", *args.argv]),
            "machine": machine_info(),
            "workflows": results,
        }
        text = json.dumps(data, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            Path(args.json).write_text(text)
            if not args.quiet:
                console.print(f"  results written to {args.json}", highlight=False, markup=False)
    if args.plot is not None:
        plotting.plot_workflows(results, args.plot, orders=(*ORDERS, MINIMAL))
        if not args.quiet:
            console.print(f"  plot written to {args.plot}", highlight=False, markup=False)
