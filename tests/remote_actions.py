"""Actions that run in worker processes: module-level, so the workers can import them."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from dagtrio import ActionRegistry, NodeOutput


def square(ctx: Any) -> int:
    return int(ctx.inputs["x"]) ** 2


def add_upstream(ctx: Any) -> int:
    return sum(ctx.upstream.values()) + int(ctx.inputs.get("x", 0))


def pid(ctx: Any) -> int:
    return os.getpid()


def spin(ctx: Any) -> None:
    """Write this worker's pid where the test looks, then burn CPU for good."""
    Path(ctx.inputs["pid_file"]).write_text(str(os.getpid()))
    while True:
        pass


def spin_for(ctx: Any) -> int:
    """Burn CPU for ``micros`` microseconds (the benchmark's cpu:MICROS)."""
    end = time.perf_counter() + ctx.inputs["micros"] / 1e6
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def fail_first(ctx: Any) -> NodeOutput:
    if ctx.attempt == 1:
        raise ValueError("first attempt fails")
    return NodeOutput.ok(ctx.attempt)


def raise_in_worker(ctx: Any) -> None:
    raise KeyError("deep inside the worker")


def read_cache(ctx: Any) -> Any:
    return ctx.cache


def read_app_data(ctx: Any) -> Any:
    return ctx.app_data


def return_lock(ctx: Any) -> Any:
    return threading.Lock()


def die(ctx: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def context_fields(ctx: Any) -> dict[str, Any]:
    return {
        "type": type(ctx).__name__,
        "dag_name": ctx.dag_name,
        "node_id": ctx.node_id,
        "run_id": ctx.run_id,
        "inputs": dict(ctx.inputs),
        "upstream": dict(ctx.upstream),
        "attempt": ctx.attempt,
        "branch": ctx.branch,
        "pid": os.getpid(),
    }


def nap(ctx: Any) -> dict[str, float]:
    """Sleep ``seconds`` in the worker; say when it started and ended, and write the
    end time where the test looks (an abandoned task's end is seen nowhere else)."""
    start = time.time()
    time.sleep(ctx.inputs["seconds"])
    end = time.time()
    if "end_file" in ctx.inputs:
        Path(ctx.inputs["end_file"]).write_text(f"{end!r} {os.getpid()}")
    return {"start": start, "end": end, "pid": os.getpid()}


class Scale:
    """An action with state of its own: a callable object."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, ctx: Any) -> int:
        return int(ctx.inputs["x"]) * self.factor


def scale(ctx: Any, *, params: dict[str, int]) -> int:
    """For `functools.partial`: its arguments are state too."""
    return int(ctx.inputs["x"]) * params["factor"]


class Counter:
    """An action whose calls change it: each attempt must start from a fresh copy."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ctx: Any) -> int:
        self.calls += 1
        return self.calls


def read_x(ctx: Any) -> Any:
    return ctx.inputs["point"].x


def chatty(ctx: Any) -> int:
    """Emits its progress the sync way: dropped remotely, delivered from a thread."""
    for i in range(3):
        ctx.emit_from_thread(i)
    return 3


def registry(executor: str) -> ActionRegistry:
    """Every action of this module, registered to run on ``executor``."""
    actions = ActionRegistry()
    for fn in (
        square,
        add_upstream,
        pid,
        spin,
        fail_first,
        raise_in_worker,
        read_cache,
        read_app_data,
        return_lock,
        die,
        context_fields,
        nap,
        read_x,
        chatty,
    ):
        actions.action(executor=executor)(fn)
    return actions


def alive(process_id: int) -> bool:
    """Whether a process of this id exists (a reaped one does not)."""
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        return False
    return True
