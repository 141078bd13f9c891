"""Runs each runner of an invocation, in a subprocess of its own, and gathers its figures.

A fresh process per runner keeps memory figures clean (nothing left over from another
runner's graph) and isolates a runner that crashes. The child is
``python -m dagtrio.bench.worker``; its JSON lines arrive as they are printed, and each
is handed to ``on_event`` (the progress bar) before it is folded into the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .results import RunnerResult
from .runners import RUNNERS
from .worker import measure
from .workload import Workload

__all__ = ["run_runner", "worker_command"]

OnEvent = Callable[[dict[str, Any]], None]


def worker_command(name: str, workload: Workload, *, repeats: int, memory: str) -> list[str]:
    """The command line that measures runner ``name`` in a subprocess."""
    return [
        sys.executable,
        "-m",
        "dagtrio.bench.worker",
        name,
        "--workload",
        json.dumps(workload.to_dict()),
        "--repeats",
        str(repeats),
        "--memory",
        memory,
    ]


def _child_env() -> dict[str, str]:
    # The child must import this very dagtrio, even when it is run from a checkout
    # that is on sys.path but not installed.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_runner(
    name: str,
    workload: Workload,
    *,
    repeats: int,
    memory: str,
    in_process: bool = False,
    on_event: OnEvent | None = None,
) -> RunnerResult:
    """Measure runner ``name`` on ``workload``: skipped, failed, or timed ``repeats`` times.

    ``in_process=True`` measures in this process instead (quicker to start, handy under
    a profiler, but memory figures then share the heap with everything else).
    """
    result = RunnerResult(name, "ok", workload.nodes)
    reason = RUNNERS[name].unavailable()
    if reason is not None:
        result = RunnerResult.skip(name, workload.nodes, reason)
        if on_event is not None:
            on_event({"event": "skipped", "reason": reason})
        return result

    def fold(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ready":
            result.nodes = event["nodes"]
            result.edges = event["edges"]
        elif kind == "time":
            result.times_s.append(float(event["seconds"]))
        elif kind == "memory":
            result.peak_bytes = event["peak_bytes"]
            result.memory_method = event["method"] if event["peak_bytes"] is not None else None
        elif kind == "error":
            result.status = "failed"
            result.error = f"{event['stage']}: {event['message']}"
        if on_event is not None:
            on_event(event)

    if in_process:
        measure(name, workload, repeats=repeats, memory=memory, emit=fold)
        return result

    with tempfile.TemporaryFile("w+") as stderr:
        with subprocess.Popen(
            worker_command(name, workload, repeats=repeats, memory=memory),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_child_env(),
        ) as child:
            assert child.stdout is not None
            for line in child.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # something the action printed
                if isinstance(event, dict):
                    fold(event)
        if child.returncode and result.status == "ok":
            stderr.seek(0)
            lines = [line.strip() for line in stderr.read().splitlines() if line.strip()]
            last = lines[-1] if lines else f"exit status {child.returncode}"
            result.status = "failed"
            result.error = f"worker process: {last}"
    return result
