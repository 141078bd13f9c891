"""What a benchmark found: one `RunnerResult` per runner and size, and the JSON document.

``dagtrio bench --json FILE`` writes `document`'s output. The schema is stable: a
change that renames or removes a key, or changes its meaning, bumps `SCHEMA_VERSION`;
new keys may appear without a bump. Version 1::

    {
      "schema": "dagtrio-bench",
      "version": 1,
      "created": "2025-01-31T12:00:00+00:00",     # UTC, ISO 8601
      "command": "dagtrio bench --compare ...",   # as typed (argv joined)
      "parameters": {
        "shape": "layered", "nodes": [20000], "width": 100, "density": null,
        "children": 4, "max_parallel": 64, "action": "noop", "hooks": 0,
        "readers": 0,                              # --readers (added in version 1)
        "repeats": 3, "seed": 0, "compare": true, "runners": ["trio-floor", ...],
        "memory": "tracemalloc", "in_process": false,
        "journal": false                           # --journal (added in version 1)
      },
      "machine": {
        "python": "3.11.7", "implementation": "CPython", "system": "Linux",
        "release": "...", "machine": "x86_64", "cpu_model": "..." | null,
        "cpu_count": 2, "packages": {"dagtrio": "0.1.0", "trio": "0.35.0",
        "dask": "2026.8.0" | null}
      },
      "results": [                                 # per size, runners in table order
        {
          "name": "trio-floor",                    # runner name
          "status": "ok",                          # "ok" | "skipped" | "failed"
          "nodes": 20000, "edges": 39953,          # the graph actually run
          "times_s": [0.41, 0.40, 0.40],           # every timed run, seconds
          "median_s": 0.40, "best_s": 0.40,
          "nodes_per_s": 50000.0,                  # nodes / median_s
          "peak_bytes": 5000000,                   # null without a memory figure
          "peak_bytes_per_node": 250.0,
          "memory_method": "tracemalloc",          # "tracemalloc" | "maxrss" | null
          "ratio_to_floor": 1.0,                   # median_s / trio-floor's median_s
          "skipped": null,                         # why it did not run, if skipped
          "error": null                            # what went wrong, if failed
        }
      ],
      "journal": [                                 # added in version 1; [] if not measured
        {
          "nodes": 20000,                          # the graph size
          "throughput_ratio": 0.45                 # dagtrio-journal's nodes/s ÷ dagtrio's
        }
      ]
    }

Figures a runner does not have (skipped, failed) are ``null``. ``ratio_to_floor`` is
always against the ``trio-floor`` run of the same size in the same invocation.
``journal`` has one entry per size at which both ``dagtrio`` and ``dagtrio-journal``
ran and were timed in this invocation (``dagtrio bench --journal``), in size order;
a document written before it existed simply lacks the key. Its ratio is of
throughputs, so higher is better and 1.0 means the journal costs nothing.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "RunnerResult",
    "document",
    "machine_info",
    "set_ratios",
    "throughput_ratio",
]

#: The ``schema`` field of the document.
SCHEMA = "dagtrio-bench"
#: Bumped by any change that renames or removes a key or changes its meaning.
SCHEMA_VERSION = 1


@attrs.define
class RunnerResult:
    """One runner's figures on one graph size (see the module docstring for each field)."""

    name: str
    status: str
    nodes: int
    edges: int | None = None
    times_s: list[float] = attrs.field(factory=list)
    peak_bytes: int | None = None
    memory_method: str | None = None
    ratio_to_floor: float | None = None
    skipped: str | None = None
    error: str | None = None

    @classmethod
    def skip(cls, name: str, nodes: int, reason: str) -> RunnerResult:
        """A runner that could not run here (a missing optional extra)."""
        return cls(name, "skipped", nodes, skipped=reason)

    @property
    def ok(self) -> bool:
        """True if the runner passed its check and was timed."""
        return self.status == "ok" and bool(self.times_s)

    @property
    def median_s(self) -> float | None:
        """Median wall time of the timed runs, seconds."""
        return statistics.median(self.times_s) if self.ok else None

    @property
    def best_s(self) -> float | None:
        """Shortest wall time of the timed runs, seconds."""
        return min(self.times_s) if self.ok else None

    @property
    def nodes_per_s(self) -> float | None:
        """Throughput at the median time."""
        median = self.median_s
        return self.nodes / median if median else None

    @property
    def peak_bytes_per_node(self) -> float | None:
        """Peak memory divided by the number of nodes."""
        return None if self.peak_bytes is None else self.peak_bytes / self.nodes

    def to_dict(self) -> dict[str, Any]:
        """This result as a ``results`` entry of the JSON document."""
        return {
            "name": self.name,
            "status": self.status,
            "nodes": self.nodes,
            "edges": self.edges,
            "times_s": list(self.times_s),
            "median_s": self.median_s,
            "best_s": self.best_s,
            "nodes_per_s": self.nodes_per_s,
            "peak_bytes": self.peak_bytes,
            "peak_bytes_per_node": self.peak_bytes_per_node,
            "memory_method": self.memory_method,
            "ratio_to_floor": self.ratio_to_floor,
            "skipped": self.skipped,
            "error": self.error,
        }


def set_ratios(results: Sequence[RunnerResult], floor: str) -> None:
    """Fill in ``ratio_to_floor`` for every result of one size, from the ``floor`` runner's."""
    base = next((r.median_s for r in results if r.name == floor and r.ok), None)
    for result in results:
        median = result.median_s
        result.ratio_to_floor = median / base if base and median is not None else None


def throughput_ratio(results: Sequence[RunnerResult], name: str, base: str) -> float | None:
    """``name``'s nodes/s ÷ ``base``'s among the results of one size; None unless both ran."""
    by_name = {result.name: result.nodes_per_s for result in results if result.ok}
    rate, base_rate = by_name.get(name), by_name.get(base)
    return rate / base_rate if rate and base_rate else None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """What the figures were measured on: Python, OS, CPU and package versions."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _package_version(name) for name in ("dagtrio", "trio", "dask")},
    }


def document(
    *,
    command: str,
    parameters: dict[str, Any],
    machine: dict[str, Any],
    results: Iterable[RunnerResult],
    journal: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The ``--json`` document (schema above); ``journal`` holds its ``journal`` entries."""
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "parameters": parameters,
        "machine": machine,
        "results": [result.to_dict() for result in results],
        "journal": [dict(entry) for entry in journal],
    }
