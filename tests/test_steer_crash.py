"""Kill -9 while a run is held for a decision, and in the middle of a re-run: the
resumed run ends with the same nodes and outputs as one that was never killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from steer_dag import SPECS, registry

from dagtrio import CompleteNode, Coordinator, RunIdle, SqliteJournal

HERE = Path(__file__).parent

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def kill_when(args: list[str], line: str, env: dict[str, str]) -> None:
    """Run steer_dag.py with ``args``; SIGKILL it once it prints ``line``."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "steer_dag.py"), *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        assert process.stdout is not None
        for out in process.stdout:
            if out.strip() == line:
                process.send_signal(signal.SIGKILL)
                break
        else:
            raise AssertionError(f"steer_dag.py {args} ended without printing {line!r}")
    finally:
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def outcome(report: Any) -> dict[str, tuple[str, Any, bool]]:
    return {n: (r.status.value, r.outputs, r.supplied) for n, r in report.nodes.items()}


async def complete_when_held(coordinator: Coordinator, **open_run: Any) -> Any:
    async with coordinator.open_run(**open_run) as run:
        async for event in run.events():
            if isinstance(event, RunIdle):
                assert event.held == ("tool",)
                await run.submit(CompleteNode("tool", 40))
                break
    return run.report()


def test_a_held_run_killed_resumes_held_and_ends_as_if_never_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKEN", "tool")
    # Without a crash.
    coordinator = Coordinator(
        registry(), on_failure="hold", journal=SqliteJournal(tmp_path / "calm.db")
    )
    calm = trio.run(lambda: complete_when_held(coordinator, specs=SPECS, run_id="r"))
    # Killed while held, then resumed: still held, and decided the same way.
    path = tmp_path / "killed.db"
    kill_when([str(path), "r", "hold"], "held tool", {"BROKEN": "tool"})
    coordinator = Coordinator(registry(), on_failure="hold", journal=SqliteJournal(path))
    resumed = trio.run(lambda: complete_when_held(coordinator, resume="r"))
    assert resumed.success and calm.success
    assert outcome(resumed) == outcome(calm)
    assert resumed.nodes["end"].outputs == 1 + (1 + 40) + (1 + 1)


def test_a_rerun_killed_in_the_middle_is_finished_by_a_plain_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failed_run(path: Path) -> None:
        monkeypatch.setenv("BROKEN", "tool")
        report = trio.run(
            lambda: Coordinator(registry(), journal=SqliteJournal(path)).run(SPECS, run_id="r")
        )
        assert report.nodes["tool"].status.value == "failed"
        monkeypatch.delenv("BROKEN")

    calm_path, killed_path = tmp_path / "calm.db", tmp_path / "killed.db"
    failed_run(calm_path)
    calm = trio.run(
        lambda: Coordinator(registry(), journal=SqliteJournal(calm_path)).resume(
            "r", rerun="failed"
        )
    )
    failed_run(killed_path)
    kill_when([str(killed_path), "r", "rerun"], "running slow", {"HANG": "1"})
    journal = SqliteJournal(killed_path)
    assert journal.stored_run("r").info.status == "running"  # the re-run was under way
    resumed = trio.run(lambda: Coordinator(registry(), journal=journal).resume("r"))
    assert calm.success and resumed.success
    assert outcome(resumed) == outcome(calm)
    assert journal.report("r").nodes == resumed.nodes
