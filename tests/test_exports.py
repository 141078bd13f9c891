"""The public surface: every name DESIGN.md §1 lists is importable from dagtrio, typed,
and documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import dagtrio

DESIGN_NAMES = [
    "NodeSpec",
    "NodeRef",
    "NodeOutput",
    "NodeCtx",
    "NodeStatus",
    "RunReport",
    "NodeRecord",
    "ExecutionEvent",
    "NodeAdded",
    "NodeStarted",
    "NodeCompleted",
    "NodeFailed",
    "NodeRetrying",
    "NodeCancelled",
    "NodeSkipped",
    "BranchPaused",
    "BranchResumed",
    "BranchCancelled",
    "CommandRejected",
    "HookFailed",
    "RunIdle",
    "RunResumed",
    "CustomEvent",
    "ExecutorCommand",
    "AddNode",
    "AddNodes",
    "SetNodeInputs",
    "PauseBranch",
    "ResumeBranch",
    "CancelBranch",
    "EmitEvent",
    "NodeAction",
    "ActionRegistry",
    "EventHook",
    "HookContext",
    "Coordinator",
    "Run",
    "run_dag",
    "run_dag_sync",
]


def test_every_design_name_is_exported() -> None:
    missing = [name for name in DESIGN_NAMES if not hasattr(dagtrio, name)]
    assert missing == []
    assert set(DESIGN_NAMES) <= set(dagtrio.__all__)


def test_all_is_exactly_the_public_names() -> None:
    public = {name for name in vars(dagtrio) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(dagtrio, name))}
    assert set(dagtrio.__all__) == public - modules
    assert sorted(dagtrio.__all__) == dagtrio.__all__


def test_every_public_name_has_a_docstring() -> None:
    for name in dagtrio.__all__:
        obj = getattr(dagtrio, name)
        if name == "converter":
            continue  # a cattrs.Converter instance, documented where it is defined
        assert inspect.getdoc(obj), f"dagtrio.{name} has no docstring"
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    assert inspect.getdoc(member), f"dagtrio.{name}.{attr} has no docstring"


def test_package_is_typed() -> None:
    assert (Path(dagtrio.__file__).parent / "py.typed").exists()
