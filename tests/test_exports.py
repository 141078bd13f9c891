"""The public surface: every name DESIGN.md §1 lists is importable from dagtrio, typed,
and documented."""

from __future__ import annotations

import enum
import inspect
import os
import subprocess
import sys
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


def test_every_export_says_it_lives_in_dagtrio() -> None:
    # Moving a private module must not change a repr, a traceback or a pickle.
    for name in dagtrio.__all__:
        obj = getattr(dagtrio, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "dagtrio", f"dagtrio.{name}.__module__ is {obj.__module__}"


# ------------------------------------------------------------------ the surface, pinned

SNAPSHOT = Path(__file__).parent / "public_api.txt"


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def _describe(qualified: str, obj: object) -> list[str]:
    if inspect.isclass(obj):
        bases = ", ".join(base.__name__ for base in obj.__bases__ if base is not object)
        lines = [f"class {qualified}({bases}){_signature(obj)}"]
        if issubclass(obj, enum.Enum):
            lines += [f"  {member.name} = {member.value!r}" for member in obj]
            return lines
        for attr, member in sorted(vars(obj).items()):
            if attr.startswith("_"):
                continue
            if isinstance(member, classmethod | staticmethod):
                kind = type(member).__name__
                lines.append(f"  {kind} {attr}{_signature(member.__func__)}")
            elif inspect.isfunction(member):
                prefix = "async def" if inspect.iscoroutinefunction(member) else "def"
                lines.append(f"  {prefix} {attr}{_signature(member)}")
            elif isinstance(member, property):
                lines.append(f"  property {attr}")
        return lines
    if inspect.isfunction(obj):
        prefix = "async def" if inspect.iscoroutinefunction(obj) else "def"
        return [f"{prefix} {qualified}{_signature(obj)}"]
    return [f"{qualified}: {type(obj).__module__}.{type(obj).__qualname__}"]


def public_api() -> str:
    """One line per public name (and per public member of a class): kind and signature."""
    import dagtrio.executors
    import dagtrio.testing
    import dagtrio.tracing
    import dagtrio.web

    lines: list[str] = []
    for module in (dagtrio, dagtrio.executors, dagtrio.testing, dagtrio.tracing, dagtrio.web):
        for name in sorted(module.__all__):
            lines += _describe(f"{module.__name__}.{name}", getattr(module, name))
    return "\n".join(lines) + "\n"


def test_the_public_surface_is_the_reviewed_one() -> None:
    """Any change to a public name or signature shows up as a diff of public_api.txt:
    regenerate it with ``UPDATE_PUBLIC_API=1 pytest tests/test_exports.py`` and commit
    the diff with the change, so a reviewer sees the surface move."""
    current = public_api()
    if os.environ.get("UPDATE_PUBLIC_API"):
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.read_text() == current, (
        "the public surface changed; if on purpose, regenerate tests/public_api.txt "
        "(UPDATE_PUBLIC_API=1) and commit it"
    )


def test_importing_dagtrio_loads_no_heavy_or_optional_dependency() -> None:
    code = (
        "import sys, dagtrio; heavy = {'rich', 'igraph', 'yaml', 'ruamel', 'dask',"
        " 'distributed', 'trio_parallel', 'opentelemetry', 'hypothesis', 'matplotlib',"
        " 'starlette', 'hypercorn', 'anyio'};"
        " print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_the_executors_loads_no_engine() -> None:
    code = (
        "import sys, dagtrio.executors; engines = {'trio_parallel', 'distributed', 'dask'};"
        " print(sorted(engines & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_executors_name_their_own_module() -> None:
    import dagtrio.executors

    for name in ("Executor", "PortableCtx", "ThreadExecutor"):
        assert getattr(dagtrio.executors, name).__module__ == "dagtrio.executors"
