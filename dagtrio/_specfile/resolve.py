"""Import what a DAG file (or ``--actions``) names: the registry and the hooks.

``module`` or ``module:attribute``, as ``python -m`` would import it: the current
directory is importable, and so is the DAG file's own directory, so that a file and
the module of its actions can sit side by side.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .._actions.registry import ActionRegistry
from .._hooks.hook import EventHook, as_hook

__all__ = ["BadReference", "load_hooks", "load_registry"]


class BadReference(Exception):
    """A module or attribute that cannot be used, and why (one line). ``imported``
    says whether the module itself imported (the attribute is what is wrong)."""

    def __init__(self, message: str, *, imported: bool = True, index: int | None = None) -> None:
        super().__init__(message)
        self.imported = imported
        #: which of the hooks, for a hook
        self.index = index


def _importable(directories: Sequence[Path]) -> None:
    for entry in ("", *(str(d.resolve()) for d in directories)):
        if entry not in sys.path and not (entry == "" and str(Path.cwd()) in sys.path):
            sys.path.insert(0, entry)


def _module(reference: str, what: str, directories: Sequence[Path]) -> tuple[ModuleType, str]:
    module_name, _, attr = reference.partition(":")
    if not module_name:
        raise BadReference(f"{what} {reference!r}: no module named")
    _importable(directories)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise BadReference(
            f"{what} {reference!r}: the module does not import: {type(exc).__name__}: {exc}",
            imported=False,
        ) from None
    return module, attr


def load_registry(
    reference: str, *, what: str = "--actions", directories: Sequence[Path] = ()
) -> ActionRegistry:
    """The `ActionRegistry` that ``MODULE[:NAME]`` names; `BadReference` saying why not.

    ``NAME`` may be a registry or a function that returns one; without it, the module
    must hold exactly one registry.
    """
    module, attr = _module(reference, what, directories)
    module_name = module.__name__
    if attr:
        if not hasattr(module, attr):
            raise BadReference(f"{what} {reference!r}: module {module_name} has no {attr!r}")
        found = getattr(module, attr)
        if callable(found) and not isinstance(found, ActionRegistry):
            try:
                found = found()
            except Exception as exc:
                raise BadReference(
                    f"{what} {reference!r}: {attr}() raised {type(exc).__name__}: {exc}"
                ) from None
        if not isinstance(found, ActionRegistry):
            raise BadReference(
                f"{what} {reference!r}: {attr} is a {type(found).__name__}, not an ActionRegistry"
            )
        return found
    registries = {
        name: value for name, value in vars(module).items() if isinstance(value, ActionRegistry)
    }
    if len(registries) == 1:
        return next(iter(registries.values()))
    if not registries:
        raise BadReference(
            f"{what} {reference!r}: module {module_name} has no ActionRegistry; name the"
            " function that builds one: MODULE:NAME"
        )
    raise BadReference(
        f"{what} {reference!r}: module {module_name} has several registries"
        f" ({', '.join(sorted(registries))}); pick one: {module_name}:NAME"
    )


def load_hooks(references: Sequence[str], *, directories: Sequence[Path] = ()) -> list[EventHook]:
    """The hooks that ``module:attribute`` references name, in order.

    The attribute may be an `EventHook`, an `EventHook` subclass (made with no
    arguments), a function ``(ctx, event)``, or a function of no arguments that
    returns one of those (a factory, for a hook that keeps state per run).
    """
    hooks: list[EventHook] = []
    for i, reference in enumerate(references):
        try:
            hooks.append(_hook(reference, f"hooks[{i}]", directories))
        except BadReference as exc:
            exc.index = i
            raise
    return hooks


def _hook(reference: str, what: str, directories: Sequence[Path]) -> EventHook:
    module, attr = _module(reference, what, directories)
    if not attr:
        raise BadReference(f"{what} {reference!r}: name the hook: MODULE:NAME")
    if not hasattr(module, attr):
        raise BadReference(f"{what} {reference!r}: module {module.__name__} has no {attr!r}")
    found: Any = getattr(module, attr)
    try:
        if _is_factory(found):
            found = found()
        return as_hook(found)
    except Exception as exc:
        raise BadReference(
            f"{what} {reference!r}: not a hook: {type(exc).__name__}: {exc}"
        ) from None


def _is_factory(found: Any) -> bool:
    """An `EventHook` class, or a function of no arguments (not a hook itself)."""
    if isinstance(found, type):
        return issubclass(found, EventHook)
    if isinstance(found, EventHook) or not callable(found):
        return False
    try:
        parameters = inspect.signature(found).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters
    )
