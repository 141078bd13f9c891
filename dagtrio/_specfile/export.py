"""A DAG as DOT, GraphML, Mermaid or JSON text, for ``dagtrio graph --format``.

DOT and GraphML come from igraph's writers, from the one graph the analysis uses;
Mermaid (for Markdown: GitHub renders it) and JSON are written here.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = ["FORMATS", "Table", "export"]

FORMATS = ("dot", "graphml", "mermaid", "json")


@attrs.frozen
class Table:
    """The nodes of a DAG, one column per attribute, and its edges by index.

    ``extra`` holds optional columns (``status``, ``duration``, ``estimate``) whose
    cells may be None.
    """

    dag: str
    ids: Sequence[str]
    actions: Sequence[str]
    branches: Sequence[str]
    edges: Sequence[tuple[int, int]]
    extra: Mapping[str, Sequence[Any]] = attrs.Factory(dict)


def export(table: Table, fmt: str, *, summary: Mapping[str, Any] | None = None) -> str:
    """``table`` in the format ``fmt`` (one of `FORMATS`)."""
    if fmt == "mermaid":
        return _mermaid(table)
    if fmt == "json":
        return _json(table, summary or {})
    return _igraph(table, fmt)


def _igraph(table: Table, fmt: str) -> str:
    import igraph

    graph = igraph.Graph(n=len(table.ids), edges=list(table.edges), directed=True)
    graph["name"] = table.dag
    graph.vs["name"] = list(table.ids)
    graph.vs["action"] = list(table.actions)
    graph.vs["branch"] = list(table.branches)
    for column, cells in table.extra.items():
        # igraph drops a column that mixes types: a missing number is NaN, a missing
        # string empty.
        numeric = any(isinstance(cell, int | float) for cell in cells)
        missing: Any = math.nan if numeric else ""
        graph.vs[column] = [missing if cell is None else cell for cell in cells]
    if fmt == "dot":
        graph.vs["label"] = list(table.ids)  # what Graphviz shows on each node
    # igraph's writers want a file name (they write from C), not a Python stream.
    fd, name = tempfile.mkstemp(suffix=f".{fmt}")
    os.close(fd)
    try:
        if fmt == "dot":
            graph.write_dot(name)
        else:
            graph.write_graphml(name)
        with open(name, encoding="utf-8") as file:
            return file.read()
    finally:
        os.unlink(name)


_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _mermaid(table: Table) -> str:
    lines = ["flowchart TD"]
    names = [f"n{i}_{_UNSAFE.sub('_', node)[:40]}" for i, node in enumerate(table.ids)]
    status = table.extra.get("status")
    for i, node in enumerate(table.ids):
        label = node.replace('"', "#quot;")
        if table.actions[i] != node:
            label += f"<br/><small>{table.actions[i]}</small>"
        lines.append(f'    {names[i]}["{label}"]')
        if status is not None and status[i]:
            lines.append(f"    class {names[i]} {str(status[i]).lower()}")
    for dep, dependent in table.edges:
        lines.append(f"    {names[dep]} --> {names[dependent]}")
    if status is not None:
        lines += [
            "    classDef succeeded fill:#d4edda,stroke:#28a745",
            "    classDef failed fill:#f8d7da,stroke:#dc3545",
            "    classDef skipped fill:#eeeeee,stroke:#999999",
            "    classDef cancelled fill:#fff3cd,stroke:#ffc107",
        ]
    return "\n".join(lines) + "\n"


def _json(table: Table, summary: Mapping[str, Any]) -> str:
    deps: list[list[str]] = [[] for _ in table.ids]
    for dep, dependent in table.edges:
        deps[dependent].append(table.ids[dep])
    nodes = []
    for i, node in enumerate(table.ids):
        entry: dict[str, Any] = {
            "id": node,
            "action": table.actions[i],
            "branch": table.branches[i],
            "deps": deps[i],
        }
        for column, cells in table.extra.items():
            if cells[i] is not None:
                entry[column] = cells[i]
        nodes.append(entry)
    return json.dumps({"dag": table.dag, **summary, "nodes": nodes}, indent=2) + "\n"
