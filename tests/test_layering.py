"""The rooms of dagtrio import only from below: the layering, as a test.

Rank by rank, bottom-up (a module may import its own room and lower ranks; rooms of
one rank do not import each other):

0. ``_errors``, ``_validate``, ``_plot`` (matplotlib)
1. ``_model``: the data model
2. ``_actions``: what a node runs and where (``executors``, its public face, may
   import it)
3. ``_state``: the only writer of the graph
4. ``_hooks`` (the pipeline), ``_durable`` (journal, replay, cache)
5. ``_runtime``: the coordinator, the run and its rooms; ``_specfile``: DAG files
6. the public package and its users: ``dagtrio`` itself, ``cli``, ``bench``,
   ``testing``, ``web``, ``__main__`` (they may use the public package, and ``cli`` the
   ``bench`` library it drives)

Imports inside functions and under ``TYPE_CHECKING`` count too. Cycles between modules
are refused, but for the data model's two: events carry commands (``CommandRejected``)
and commands carry events (``EmitEvent``); ``RunReport.to_json`` uses the converter,
which knows reports (a lazy import).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).parent.parent / "dagtrio"

RANKS = {
    "_errors": 0,
    "_validate": 0,
    "_plot": 0,  # matplotlib, imported nowhere else
    "_model": 1,
    "_actions": 2,
    "executors": 2,
    "_state": 3,
    "_hooks": 4,
    "_durable": 4,
    "_runtime": 5,
    "_specfile": 5,  # DAG files: specs, registries and hooks, for the command line
    "": 6,  # dagtrio/__init__.py, the public surface
    "__main__": 6,
    "cli": 6,
    "bench": 6,
    "testing": 6,
    "web": 6,  # the browser view (the ASGI stack, imported in web/app.py only)
    "tracing": 6,  # OpenTelemetry spans (opentelemetry, imported nowhere else)
}
#: imports across rooms of one rank that are part of the design
ALLOWED_SIDEWAYS = {
    ("executors", "_actions"),
    ("cli", "bench"),
    ("cli", "web"),  # dagtrio run --serve, dagtrio serve
    ("cli", ""),
    ("bench", ""),
    ("bench", "testing"),  # the benchmark checks every run with check_run
    ("testing", ""),
    ("__main__", "cli"),
}
#: the only cycles: the data model's
ALLOWED_CYCLES = {
    # events carry commands (CommandRejected), commands carry events (EmitEvent)
    frozenset({"dagtrio._model.events", "dagtrio._model.commands"}),
    # RunReport.to_json / from_json: the converter knows reports; the one lazy import
    frozenset({"dagtrio._model.convert", "dagtrio._model.report"}),
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """The dagtrio modules ``path`` imports (a package's __init__ for a package)."""
    here = _module(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("dagtrio"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("dagtrio"):
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                is_module = (ROOT.parent / (candidate.replace(".", "/") + ".py")).exists() or (
                    ROOT.parent / candidate.replace(".", "/") / "__init__.py"
                ).exists()
                found.add(candidate if is_module else target)
    found.discard(here)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module(path): _imports(path) for path in sorted(ROOT.rglob("*.py"))}


def test_every_room_imports_only_from_below() -> None:
    wrong = []
    for module, targets in _graph().items():
        room = _room(module)
        for target in targets:
            other = _room(target)
            if other == room:
                continue
            assert room in RANKS and other in RANKS, f"unknown room of {module} or {target}"
            below = RANKS[other] < RANKS[room]
            if not below and (room, other) not in ALLOWED_SIDEWAYS:
                wrong.append(
                    f"{module} (rank {RANKS[room]}) imports {target} (rank {RANKS[other]})"
                )
    assert wrong == []


def test_no_import_cycles_but_events_and_commands() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(component)

    for module in graph:
        if module not in index:
            visit(module)
    cycles = [sorted(c) for c in components if frozenset(c) not in ALLOWED_CYCLES]
    assert cycles == []


def test_the_layering_test_sees_the_imports() -> None:
    graph = _graph()
    assert "dagtrio._model.spec" in graph["dagtrio._model.events"]
    assert "dagtrio._state.state" in graph["dagtrio._runtime.base"]
    reverse = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            reverse[target].add(module)
    assert reverse["dagtrio._errors"]  # everyone's
