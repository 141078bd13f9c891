"""``--plot FILE``: nodes/s against graph size, one line per runner (needs matplotlib).

With ``--shape workflow``: makespan ÷ lower bound against slots (`plot_workflows`).

With one size the figure is a bar per runner; with several (``--nodes 1000,10000,...``)
it is a log-log line per runner, so scaling shows at a glance: a flat line means a
constant cost per node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import _plot
from .results import RunnerResult

__all__ = ["MISSING", "available", "plot", "plot_workflows"]

#: What to tell a user who asks for a plot without matplotlib.
MISSING = _plot.missing("--plot")

available = _plot.available


def plot(results: Sequence[RunnerResult], path: str | Path, *, title: str) -> None:
    """Draw the nodes/s of every runner that was timed into ``path`` (PNG, SVG, PDF...)."""
    plt = _plot.pyplot()

    names = list(dict.fromkeys(r.name for r in results if r.ok))
    sizes = sorted({r.nodes for r in results if r.ok})
    figure, axes = plt.subplots(figsize=(8, 5))
    try:
        if len(sizes) <= 1:
            rates = [
                next(r.nodes_per_s or 0.0 for r in results if r.name == n and r.ok) for n in names
            ]
            axes.bar(names, rates, color="tab:blue")
            axes.set_ylabel("nodes / s (median)")
            axes.tick_params(axis="x", rotation=20)
        else:
            for name in names:
                points = sorted(
                    (r.nodes, r.nodes_per_s or 0.0) for r in results if r.name == name and r.ok
                )
                axes.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker="o",
                    linewidth=2.5 if name.startswith("dagtrio") else 1.5,
                    label=name,
                )
            axes.set_xscale("log")
            axes.set_yscale("log")
            axes.set_xlabel("nodes in the graph")
            axes.set_ylabel("nodes / s (median)")
            axes.legend()
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)


def plot_workflows(
    results: Sequence[Mapping[str, Any]], path: str | Path, *, orders: Sequence[str]
) -> None:
    """Draw makespan ÷ lower bound against slots, a panel per workflow, a line per order.

    ``results`` are ``dagtrio bench --shape workflow``'s (its ``--json`` document's
    ``workflows``): each with a ``name`` and its ``slots`` rows.
    """
    plt = _plot.pyplot()
    columns = min(len(results), 3)
    rows = -(-len(results) // columns)
    figure, grid = plt.subplots(
        rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False, sharey=True
    )
    try:
        styles = {"fifo": "o-", "critical_path": "s-"}
        for axes, result in zip(grid.flat, results, strict=False):
            slots = [row["slots"] for row in result["slots"]]
            for order in orders:
                ratios = [
                    row["makespan_s"][order] / row["lower_bound_s"] if row["lower_bound_s"] else 1.0
                    for row in result["slots"]
                ]
                axes.plot(slots, ratios, styles.get(order, "x--"), label=order, alpha=0.9)
            axes.set_xscale("log", base=2)
            axes.set_xticks(slots, [str(s) for s in slots])
            axes.set_title(f"{result['name']} ({result['tasks']:,} tasks)")
            axes.set_xlabel("slots (max_parallel)")
            axes.axhline(1.0, color="grey", linewidth=0.8)
            axes.grid(True, alpha=0.3)
        for axes in grid.flat[len(results) :]:
            axes.set_visible(False)
        for axes in grid[:, 0]:
            axes.set_ylabel("makespan ÷ lower bound")
        grid.flat[0].legend()
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
