"""JSON values, strictly: what a journal, a cache or a report may store without loss.

`json.dumps` accepts more than JSON can give back. It turns the keys ``1``, ``True``
and ``None`` into the strings ``"1"``, ``"true"`` and ``"null"``, so ``{1: "a", "1":
"b"}`` is stored as ``{"1": "b"}``: one value silently lost, and every other non-string
key silently changed. Everything dagtrio stores goes through `dumps` here instead, which
refuses such values and says where in the value the problem is.

Tuples are accepted and come back as lists (JSON has one kind of array); subclasses of
``str``, ``int``, ``float``, ``dict`` and ``list`` are accepted and come back as the
base type.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["check", "dumps"]


class _Bad(Exception):
    """Where a value stops being a JSON value: a message and the path to it, innermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[object] = []


def _walk(value: Any) -> None:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return
    if kind is float:
        if not math.isfinite(value):
            raise _Bad(f"{value!r} is not a JSON value (JSON has no NaN or infinity)")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(
                    f"key {key!r} is {_a(key)}, not a string (JSON keys are strings: "
                    "it would come back changed, or collide with another key)"
                )
            try:
                _walk(item)
            except _Bad as bad:
                bad.path.append(key)
                raise
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            try:
                _walk(item)
            except _Bad as bad:
                bad.path.append(index)
                raise
        return
    if isinstance(value, str | int):  # subclasses: enums and the like
        return
    if isinstance(value, float):
        _walk(float(value))
        return
    raise _Bad(f"{_a(value)} is not a JSON value")


def _a(value: object) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def check(value: Any) -> None:
    """Raise `TypeError` (or `ValueError` for NaN and infinity) unless ``value`` is a
    JSON value that comes back equal (tuples aside); the message says where."""
    try:
        _walk(value)
    except _Bad as bad:
        where = "".join(f"[{part!r}]" for part in reversed(bad.path))
        message = f"at {where}: {bad.message}" if where else bad.message
        error = ValueError if "NaN" in bad.message else TypeError
        raise error(message) from None
    except RecursionError:
        raise ValueError("nested too deeply to be stored as JSON") from None


def dumps(value: Any) -> str:
    """``value`` as JSON text, or the error of `check`."""
    check(value)
    return json.dumps(value, allow_nan=False)
