"""Argument checks, in one place: integers and seconds, the way every API takes them.

A bool is an int to Python, and NaN compares false with everything, so the obvious
``isinstance(value, int) and value >= 1`` accepts ``True`` and ``nan >= 0`` slips
through ``value < 0``. These helpers refuse both, and say which argument is wrong.
"""

from __future__ import annotations

import math

__all__ = ["check_int", "check_seconds"]


def check_int(
    name: str, value: object, minimum: int, *, type_error: type[Exception] = ValueError
) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``; else ``ValueError``
    (``type_error`` for a value that is not an int at all), naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_seconds(
    name: str,
    value: object,
    *,
    finite: bool = False,
    type_error: type[Exception] = ValueError,
) -> float:
    """``value`` as a float if it is a number of seconds >= 0 (not a bool, not NaN, and
    with ``finite`` not infinite); else ``ValueError`` (``type_error`` for a value that is
    not a number), naming ``name``."""
    what = "a finite number of seconds >= 0" if finite else "a number of seconds >= 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(f"{name} must be {what}, got {value!r}")
    if math.isnan(value) or value < 0 or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)
