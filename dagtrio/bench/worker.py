"""Measure one runner on one workload, in this process; the unit ``dagtrio bench`` spawns.

::

    python -m dagtrio.bench.worker RUNNER --workload JSON [--repeats R] [--memory METHOD]

prints one JSON object per line on stdout as it goes, so the parent can drive its
progress bar and never has to parse anything else:

- ``{"event": "ready", "nodes": N, "edges": E}`` once the graph is built;
- ``{"event": "checked"}`` once the correctness check passed;
- ``{"event": "time", "seconds": S}`` per timed run;
- ``{"event": "memory", "peak_bytes": B, "method": M}`` (unless ``--memory none``);
- ``{"event": "error", "stage": STAGE, "message": TEXT}`` and exit status 1 on failure.

Memory, per ``--memory``: ``tracemalloc`` (default) runs once more, untimed, under
`tracemalloc` and reports the peak of what that run allocated beyond what existed
before it (the input graph is built already, the run's report is included);
``maxrss`` reports how far the process's peak resident size rose from just before
the check to the end of the timed runs (whole-process, page-grained, no extra run).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from .generators import edge_count
from .runners import RUNNERS
from .workload import Workload

__all__ = ["MEMORY_METHODS", "main", "measure"]

#: The ways `measure` can take peak memory.
MEMORY_METHODS = ("tracemalloc", "maxrss", "none")

Emit = Callable[[dict[str, Any]], None]


def _maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak if sys.platform == "darwin" else peak * 1024


def measure(runner: str, workload: Workload, *, repeats: int, memory: str, emit: Emit) -> bool:
    """Build, check, time and weigh ``runner`` on ``workload``, reporting through ``emit``.

    Returns False (after emitting an ``error`` event) if any stage failed.
    """
    stage = "prepare"
    try:
        graph = workload.graph()
        trial = RUNNERS[runner].prepare(workload, graph)
        emit({"event": "ready", "nodes": len(graph), "edges": edge_count(graph)})
        rss_before = _maxrss_bytes()
        stage = "check"
        trial.check()
        emit({"event": "checked"})
        stage = "time"
        for _ in range(repeats):
            # Garbage from the previous run must not be collected on this run's clock.
            gc.collect()
            emit({"event": "time", "seconds": trial.run()})
        stage = "memory"
        if memory == "maxrss":
            rss_after = _maxrss_bytes()
            peak = None if rss_before is None or rss_after is None else rss_after - rss_before
            emit({"event": "memory", "peak_bytes": peak, "method": "maxrss"})
        elif memory == "tracemalloc":
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                trial.run()
                peak = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
            emit({"event": "memory", "peak_bytes": peak, "method": "tracemalloc"})
    except Exception as exc:  # reported to the parent, which prints it in the table
        text = str(exc) or type(exc).__name__
        if isinstance(exc, BaseExceptionGroup):
            text = "; ".join(str(e) or type(e).__name__ for e in exc.exceptions[:3])
        emit({"event": "error", "stage": stage, "message": f"{type(exc).__name__}: {text}"})
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m dagtrio.bench.worker``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m dagtrio.bench.worker", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("runner", choices=sorted(RUNNERS))
    parser.add_argument("--workload", required=True, help="the Workload as a JSON object")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", choices=MEMORY_METHODS, default="tracemalloc")
    args = parser.parse_args(argv)
    try:
        workload = Workload.from_dict(json.loads(args.workload))
    except (ValueError, TypeError) as exc:
        parser.error(f"--workload: {exc}")

    def emit(event: dict[str, Any]) -> None:
        print(json.dumps(event), flush=True)

    ok = measure(args.runner, workload, repeats=args.repeats, memory=args.memory, emit=emit)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
