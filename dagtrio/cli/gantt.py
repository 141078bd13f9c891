"""``dagtrio graph --gantt FILE``: what ran when in a journaled run, as a chart.

One bar per node that started, from its first start to its end, coloured by how it
ended, in the order the nodes started. ``.png`` (or ``.svg``, ``.pdf``) is drawn with
matplotlib (the ``plot`` extra); ``.html`` is one self-contained file (inline SVG and
CSS, no script, nothing fetched) that any browser opens, with each bar's node, times
and attempts in its tooltip.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import attrs

from .. import _plot
from .._model.report import RunReport

__all__ = ["SUFFIXES", "Bar", "bars", "refusal", "write"]

#: the files --gantt writes
SUFFIXES = (".html", ".htm", ".png", ".svg", ".pdf")

#: The colour of each ending (the same in both forms).
COLOURS = {
    "succeeded": "#2e9d4c",
    "failed": "#d2413a",
    "cancelled": "#e0a526",
    "running": "#3a78d2",
    "skipped": "#9e9e9e",
    "pending": "#9e9e9e",
    "ready": "#9e9e9e",
}


@attrs.frozen
class Bar:
    """One node on the chart: seconds from the run's start to its start and end."""

    node: str
    action: str
    start: float
    end: float
    status: str
    attempts: int


def bars(report: RunReport) -> list[Bar]:
    """The bars of the nodes of ``report`` that started, in the order they started.

    A node still running (the run was interrupted) ends where the last one ended.
    """
    started = [record for record in report.nodes.values() if record.started_at is not None]
    if not started:
        return []
    origin = min(record.started_at for record in started if record.started_at is not None)
    last = max(
        (record.finished_at for record in started if record.finished_at is not None),
        default=origin,
    )
    found = []
    for record in started:
        assert record.started_at is not None
        end = record.finished_at if record.finished_at is not None else last
        found.append(
            Bar(
                record.id,
                record.action,
                record.started_at - origin,
                end - origin,
                record.status.value if record.finished_at is not None else "running",
                record.attempts,
            )
        )
    found.sort(key=lambda bar: (bar.start, bar.node))
    return found


def refusal(path: Path) -> str | None:
    """Why ``path`` cannot be drawn here (its kind, or matplotlib missing), or None;
    asked before anything else is done, so a run is not loaded for nothing."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        return f"--gantt {path}: write .png, .svg or .pdf (matplotlib) or .html (a web page)"
    if suffix not in (".html", ".htm") and not _plot.available():
        return _plot.missing(f"--gantt {path.name}") + "; or write .html"
    return None


def write(report: RunReport, path: Path) -> int:
    """Draw the chart of ``report`` into ``path`` (by its suffix); the bars drawn.

    `ValueError` for a suffix that is neither HTML nor an image matplotlib writes, or
    when matplotlib is missing for an image.
    """
    found = bars(report)
    title = f"{report.dag_name} — run {report.run_id}"
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        path.write_text(_html(found, title), encoding="utf-8")
    elif suffix in (".png", ".svg", ".pdf"):
        if not _plot.available():
            raise ValueError(_plot.missing("--gantt FILE.png"))
        _image(found, path, title)
    else:
        raise ValueError(
            f"--gantt {path}: write .png, .svg or .pdf (matplotlib) or .html (a web page)"
        )
    return len(found)


def _image(found: Sequence[Bar], path: Path, title: str) -> None:
    plt = _plot.pyplot()
    rows = max(len(found), 1)
    figure, axes = plt.subplots(figsize=(10, min(2 + 0.25 * rows, 60)))
    try:
        for row, bar in enumerate(found):
            axes.barh(
                row,
                max(bar.end - bar.start, 1e-9),
                left=bar.start,
                height=0.7,
                color=COLOURS.get(bar.status, "#9e9e9e"),
            )
        if len(found) <= 80:
            # A `$` would start matplotlib's mathtext: node ids are text.
            names = [bar.node.replace("$", r"\$") for bar in found]
            axes.set_yticks(range(len(found)), names, fontsize=8)
        else:  # node names would overlap; the rows still show the shape
            axes.set_yticks([])
            axes.set_ylabel(f"{len(found)} nodes, in the order they started")
        axes.invert_yaxis()
        axes.set_xlabel("seconds since the run's first start")
        axes.set_title(title.replace("$", r"\$"))
        axes.grid(True, axis="x", alpha=0.3)
        handles = [
            plt.Rectangle((0, 0), 1, 1, color=COLOURS[status])
            for status in ("succeeded", "failed", "cancelled", "running")
        ]
        axes.legend(handles, ["succeeded", "failed", "cancelled", "running"], loc="best")
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)


def _html(found: Sequence[Bar], title: str) -> str:
    row, label, width = 18, 220, 900
    span = max((bar.end for bar in found), default=0.0) or 1.0
    scale = width / span
    height = row * len(found) + 40
    parts = []
    for i, bar in enumerate(found):
        y = 20 + i * row
        x = label + bar.start * scale
        w = max((bar.end - bar.start) * scale, 1.0)
        tip = (
            f"{bar.node} ({bar.action}): {bar.status}, {bar.start:.3f}s to {bar.end:.3f}s"
            f" ({bar.end - bar.start:.3f}s), {bar.attempts} attempt"
            + ("s" if bar.attempts != 1 else "")
        )
        name = bar.node if len(bar.node) <= 30 else bar.node[:29] + "…"
        parts.append(
            f'<text x="{label - 6}" y="{y + 13}" text-anchor="end">{html.escape(name)}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 4}"'
            f' fill="{COLOURS.get(bar.status, "#9e9e9e")}"><title>{html.escape(tip)}</title></rect>'
        )
    ticks = []
    for k in range(11):
        seconds = span * k / 10
        x = label + seconds * scale
        ticks.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{height - 20}" class="tick"/>'
            f'<text x="{x:.1f}" y="10" text-anchor="middle">{seconds:.2f}s</text>'
        )
    legend = " ".join(
        f'<span><i style="background:{COLOURS[s]}"></i>{s}</span>'
        for s in ("succeeded", "failed", "cancelled", "running")
    )
    svg_width = label + width + 20
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 1.5em; }}
svg text {{ font-size: 11px; fill: #333; }}
.tick {{ stroke: #ddd; }}
.legend span {{ margin-right: 1.2em; }}
.legend i {{ display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em;
  vertical-align: -0.1em; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="legend">{legend} — {len(found)} nodes; hover a bar for its times.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{svg_width}" height="{height}">
{"".join(ticks)}
{"".join(parts)}
</svg></body></html>
"""
