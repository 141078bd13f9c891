"""What ``dagtrio bench`` prints: the line that says what ran, the table, the notes."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence

from rich.table import Table

from ..bench.generators import default_density
from ..bench.results import RunnerResult
from ..bench.runners import FLOOR, JOURNAL

__all__ = ["describe", "notes", "table"]


def describe(args: argparse.Namespace, nodes: int, edges: int | None) -> str:
    """The line above a table: the graph, the action and the run's limits."""
    graph = f"{args.shape}, {nodes:,} nodes"
    if edges is not None:
        graph += f", {edges:,} edges"
    if args.shape in ("layered", "growth"):
        graph += f", width {args.width}"
    if args.shape == "random":
        graph += f", density {args.density or default_density(nodes):.3g}"
    if args.shape == "growth":
        graph += f", half the initial nodes add {args.children} children each"
    return (
        f"{graph}; action {args.action}, max_parallel {args.max_parallel}, "
        f"hooks {args.hooks}, readers {args.readers}, executor {args.executor}, seed {args.seed}, "
        f"repeats {args.repeats}"
    )


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def table(results: Sequence[RunnerResult]) -> Table:
    """One row per runner: its times, throughput, memory and ratio to the floor."""
    table = Table()
    table.add_column("runner")
    for header in ("median", "best", "nodes/s", "peak mem/node", "x floor"):
        table.add_column(header, justify="right")
    for result in results:
        if result.status == "skipped":
            table.add_row(result.name, "[dim]skipped[/dim]", "", "", "", "")
            continue
        if not result.ok:
            table.add_row(result.name, "[bold red]FAILED[/bold red]", "", "", "", "")
            continue
        per_node = result.peak_bytes_per_node
        ratio = result.ratio_to_floor
        table.add_row(
            f"[bold]{result.name}[/bold]" if result.name.startswith("dagtrio") else result.name,
            _seconds(result.median_s),
            _seconds(result.best_s),
            f"{result.nodes_per_s:,.0f}",
            "-" if per_node is None else f"{per_node:,.0f} B",
            "-" if ratio is None else f"{ratio:.2f}x",
        )
    return table


def notes(args: argparse.Namespace, results: Sequence[RunnerResult]) -> list[str]:
    """What the columns mean, and what was skipped or failed."""
    notes = []
    method = next((r.memory_method for r in results if r.memory_method), None)
    if method == "tracemalloc":
        notes.append(
            "peak mem/node: tracemalloc peak of one extra untimed run (beyond the input "
            "graph, report included) ÷ nodes"
        )
    elif method == "maxrss":
        notes.append("peak mem/node: rise of the worker process's peak RSS over its runs ÷ nodes")
    notes.append(f"x floor: median ÷ {FLOOR}'s median in this invocation (lower is better)")
    if args.shape == "growth":
        notes.append(
            "growth: dagtrio grows the graph with a hook; the baselines and dagtrio-static "
            "run the final graph given up front"
        )
    if any(r.name == JOURNAL for r in results):
        notes.append(
            f"{JOURNAL}: a fresh journal file per run in a temporary folder "
            f"({tempfile.gettempdir()}, set TMPDIR to move it); the clock includes opening "
            "the file and every commit"
        )
    for result in results:
        if result.skipped:
            notes.append(f"{result.name}: skipped, {result.skipped}")
        if result.error:
            notes.append(f"{result.name}: FAILED, {result.error}")
    return notes
