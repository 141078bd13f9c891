"""The ``dagtrio`` logger: silent unless configured, structured fields on every record."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from helpers import run_mock

import dagtrio
from dagtrio import ActionRegistry, Coordinator, EventHook, HookContext, NodeSpec, RunReport


class JsonFormatter(logging.Formatter):
    """What JSON log formatters do with ``extra``: each field becomes a key."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k.startswith("dagtrio_")}
        return json.dumps({"level": record.levelname, "message": record.getMessage(), **fields})


REG = ActionRegistry()


@REG.action()
async def ok(ctx: Any) -> int:
    return 1


@REG.action()
async def bad(ctx: Any) -> None:
    raise ValueError("no such row")


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "dagtrio_event", None) == event]


def test_the_logger_is_silent_unless_the_application_configures_it() -> None:
    handlers = logging.getLogger("dagtrio").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_run_logs_its_start_and_end_with_structured_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    specs = [NodeSpec("ok", id="a"), NodeSpec("bad", id="b"), NodeSpec("ok", id="c", deps=["b"])]

    async def main() -> RunReport:
        return await Coordinator(REG).run(specs, dag_name="etl", run_id="r1")

    with caplog.at_level(logging.INFO, logger="dagtrio"):
        report = run_mock(main)
    assert not report.success
    (start,) = records(caplog, "run_started")
    assert start.levelno == logging.INFO
    assert (start.dagtrio_run, start.dagtrio_dag, start.dagtrio_resumed) == ("r1", "etl", False)  # type: ignore[attr-defined]
    assert "3 nodes" in start.getMessage()
    (end,) = records(caplog, "run_finished")
    assert end.levelno == logging.WARNING  # the run failed
    assert end.dagtrio_success is False  # type: ignore[attr-defined]
    assert end.dagtrio_counts == {"succeeded": 1, "failed": 1, "skipped": 1}  # type: ignore[attr-defined]
    (failed,) = records(caplog, "attempt_failed")
    assert failed.levelno == logging.ERROR
    fields = json.loads(JsonFormatter().format(failed))
    assert fields == {
        "level": "ERROR",
        "message": failed.getMessage(),
        "dagtrio_event": "attempt_failed",
        "dagtrio_run": "r1",
        "dagtrio_dag": "etl",
        "dagtrio_node": "b",
        "dagtrio_action": "bad",
        "dagtrio_branch": "main",
        "dagtrio_attempt": 1,
        "dagtrio_error": "ValueError: no such row",
    }
    # Every record of the run names it.
    assert all(r.dagtrio_run == "r1" for r in caplog.records if r.name == "dagtrio")  # type: ignore[attr-defined]


def test_a_successful_run_ends_at_info_and_a_hook_failure_names_the_hook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Sloppy(EventHook):
        async def on_complete(self, ctx: HookContext, success: bool) -> None:
            raise RuntimeError("could not flush")

    async def main() -> RunReport:
        coordinator = Coordinator(REG, [Sloppy()], hook_errors="isolate")
        return await coordinator.run([NodeSpec("ok", id="a")], run_id="r2")

    with caplog.at_level(logging.INFO, logger="dagtrio"):
        report = run_mock(main)
    assert report.success
    (end,) = records(caplog, "run_finished")
    assert end.levelno == logging.INFO and "succeeded" in end.getMessage()
    (hook,) = records(caplog, "hook_failed")
    assert (hook.dagtrio_run, hook.dagtrio_hook) == ("r2", "Sloppy")  # type: ignore[attr-defined]
    assert "could not flush" in hook.getMessage()


def test_a_run_that_never_started_logs_no_end(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        with pytest.raises(dagtrio.InvalidGraphError):
            await Coordinator(REG).run([NodeSpec("ok", id="a", deps=["nowhere"])])

    with caplog.at_level(logging.INFO, logger="dagtrio"):
        run_mock(main)
    assert not records(caplog, "run_started") and not records(caplog, "run_finished")
