"""Sending an attempt to another process: pickling, and saying what would not pickle.

cloudpickle (the ``process`` and ``dask`` extras both bring it), as trio-parallel and
Dask use it: it takes lambdas and the functions of ``__main__`` by value.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from .._actions.executor import PortableCtx
from .._errors import describe

try:
    import cloudpickle as _pickler
except ImportError:  # pragma: no cover - without it, what pickle takes
    _pickler = pickle

__all__ = ["dumps", "unshippable"]

dumps: Callable[[Any], bytes] = _pickler.dumps


def unshippable(fn: Callable[[Any], Any], ctx: PortableCtx, exc: Exception, where: str) -> str:
    """Say what of an attempt could not be sent to ``where``: its function, an input or
    an upstream output, each tried alone (only once sending failed)."""
    node = ctx.node_id
    try:
        dumps(fn)
    except Exception as why:
        return (
            f"node {node!r}: its function {getattr(fn, '__qualname__', fn)!r} cannot be "
            f"sent to {where}: {describe(why)} (use a module-level function)"
        )
    for what, mapping in (("input", ctx.inputs), ("the output of dep", ctx.upstream)):
        for key, value in mapping.items():
            try:
                dumps(value)
            except Exception as why:
                return f"node {node!r}: {what} {key!r} cannot be sent to {where}: {describe(why)}"
    return f"node {node!r} could not be sent to {where}: {describe(exc)}"
