"""Read-only containers for node inputs and outputs, deep: what nobody may change behind
the run's back.

A node's inputs reach many hands: the action (``ctx.inputs``), every hook
(``NodeAdded.spec``, ``ctx.graph.spec(id)``), every ``run.events()`` reader, and the
code that built the spec. If any of them could write into the inputs, the action would
receive something no command asked for and the journal never recorded (a hook that
rewrote them without `SetNodeInputs` changed what ran, un-journaled). So `freeze` copies
inputs once, when the spec is built, into containers that refuse every change:

- mappings become `FrozenDict`, a ``dict`` subclass;
- lists become `FrozenList`, a ``list`` subclass;
- tuples (namedtuples too) keep their type, with their items frozen; sets become
  ``frozenset``.

Outputs get the same treatment when a node succeeds: dependents (``ctx.upstream``),
hooks (``NodeCompleted``, ``ctx.graph.outputs``) and the report all see what the
action returned, and none of them can change it for the others, nor make a resumed
run (whose outputs come from the journal) compute something else.

Being subclasses, they are what code expects of inputs: ``==`` a dict or a list,
``isinstance(x, dict)``, ``json.dumps``, ``cattrs``, pickling and ``copy.deepcopy``
all work, and ``dict(x)`` / ``list(x)`` give a mutable shallow copy. Values of other
types (your own objects, bytearrays, arrays) are passed as they are, by reference:
dagtrio cannot know how to freeze them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["EMPTY", "FrozenDict", "FrozenList", "freeze"]


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        f"node inputs are read-only ({type(self).__name__}); change them with the "
        "SetNodeInputs command, or work on a copy: dict(inputs), list(items)"
    )


#: types whose values cannot change: returned as they are, without a look inside
_ATOMS = frozenset({type(None), bool, int, float, complex, str, bytes, range, frozenset})


class FrozenDict(dict[str, Any]):
    """A ``dict`` whose items cannot change; its values are frozen too (see `freeze`)."""

    __slots__ = ()

    # Filled in __new__, and __init__ does nothing: dict.__init__ updates in place, so
    # calling it again on a made object would rewrite it.
    def __new__(cls, *args: Any, **kwargs: Any) -> FrozenDict:
        self = dict.__new__(cls)
        if len(args) == 1 and not kwargs and type(args[0]) is dict:
            items: dict[str, Any] = args[0]  # read only: no copy needed first
        else:
            items = dict(*args, **kwargs)
        atoms = _ATOMS
        for value in items.values():
            if type(value) not in atoms:
                dict.update(self, ((key, freeze(value)) for key, value in items.items()))
                return self
        # The common inputs (names to numbers and strings) hold nothing to freeze: one
        # C-level copy instead of a generator through freeze() per value.
        dict.update(self, items)
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle's (and copy's) default for dict subclasses refills with __setitem__.
        return (FrozenDict, (dict(self),))


class FrozenList(list[Any]):
    """A ``list`` whose items cannot change; its items are frozen too (see `freeze`)."""

    __slots__ = ()

    def __new__(cls, items: Any = ()) -> FrozenList:
        self = list.__new__(cls)
        list.extend(self, (freeze(item) for item in items))
        return self

    def __init__(self, items: Any = ()) -> None:
        pass  # list.__init__ would empty and refill it (see FrozenDict.__new__)

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = reverse = sort = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle's (and copy's) default for list subclasses refills with append/extend.
        # (``+``, ``*`` and ``copy()`` give plain lists: only changes in place are refused.)
        return (FrozenList, (list(self),))


#: the inputs of every spec that has none (most of them): one shared object, not a
#: dict per node
EMPTY = FrozenDict()


def freeze(value: Any) -> Any:
    """``value`` with every dict, list, tuple and set in it made read-only (a copy);
    already frozen containers are returned as they are."""
    kind = type(value)
    if kind in _ATOMS or kind is FrozenDict or kind is FrozenList:
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value) if value else EMPTY
    if isinstance(value, list):
        return FrozenList(value)
    if kind is tuple:
        return tuple(freeze(item) for item in value)
    if isinstance(value, tuple) and hasattr(kind, "_make"):  # a namedtuple
        return kind._make(freeze(item) for item in value)
    if isinstance(value, set):
        return frozenset(value)
    return value
