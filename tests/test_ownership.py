"""Only `dagtrio._state` writes the graph: the rule of STYLE.md, as a test.

Every module outside the state's package is searched for attribute stores (plain,
augmented, annotated and tuple targets) on a node or a state (receivers named
``node``, ``dependent``, ``dep``, ``state`` or ``*_state``) whose attribute is a `Node`
slot or a `RunState` field. None may exist but the ones `OWNERS` lists.
"""

from __future__ import annotations

import ast
from pathlib import Path

from dagtrio._state.node import OWNERS, Node

ROOT = Path(__file__).parent.parent / "dagtrio"
RECEIVERS = {"node", "dependent", "dep", "state"}


def _state_fields() -> set[str]:
    tree = ast.parse((ROOT / "_state" / "base.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "StateData"]
    (init,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    fields = set()
    for node in ast.walk(init):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and getattr(target.value, "id", "") == "self":
                fields.add(target.attr)
    return fields


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stores(tree: ast.AST) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        while targets:
            target = targets.pop()
            if isinstance(target, ast.Tuple | ast.List):
                targets.extend(target.elts)
            elif isinstance(target, ast.Attribute):
                receiver = target.value
                name = (
                    receiver.id
                    if isinstance(receiver, ast.Name)
                    else receiver.attr
                    if isinstance(receiver, ast.Attribute)
                    else ""
                )
                found.append((node.lineno, name, target.attr))
    return found


def test_only_the_state_package_writes_nodes_and_the_state() -> None:
    slots = set(Node.__slots__)
    fields = _state_fields()
    assert {"nodes", "ready", "running", "paused", "listening"} <= fields  # the walk works
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        if "_state" in path.relative_to(ROOT).parts:
            continue
        module = _module(path)
        for line, receiver, attr in _stores(ast.parse(path.read_text())):
            if receiver in RECEIVERS or receiver.endswith("_state"):
                if attr in slots and module in OWNERS.get(attr, ()):
                    continue
                if attr in slots or attr in fields:
                    violations.append(f"{module}:{line} writes {receiver}.{attr}")
    assert violations == []


def test_the_owners_table_names_real_slots_and_modules() -> None:
    for slot, modules in OWNERS.items():
        assert slot in Node.__slots__
        for module in modules:
            assert (ROOT.parent / (module.replace(".", "/") + ".py")).exists()
