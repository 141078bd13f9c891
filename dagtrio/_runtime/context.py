# pyright: reportIncompatibleVariableOverride=false
"""The `NodeCtx` a run hands its actions: built in a few stores, read on demand.

Every attempt gets a context. Building the public `NodeCtx` (a frozen attrs class)
costs ten guarded stores and a fresh ``upstream`` dict per start: 1.2 µs of a no-op
node's ~13. Most actions read two or three fields, and a no-op none. `LiveCtx` is a
`NodeCtx` that holds the node, its attempt and what the run shares, and answers each
field when it is read; ``upstream`` is built on first read. The coordinator builds one
in four stores (`Loop._dispatch`). To everything outside it behaves as the `NodeCtx`
with the same fields: it is an instance of it, compares equal to it, prints, pickles,
copies and `attrs.evolve`\\ s as one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._model.spec import NodeCtx

if TYPE_CHECKING:
    from .._state.node import Node

__all__ = [
    "LiveCtx",
    "RunShared",
    "new_ctx",
    "set_attempt",
    "set_inputs",
    "set_node",
    "set_shared",
]


class RunShared:
    """What every context of one run shares (one object per run, not per attempt)."""

    __slots__ = ("app_data", "cache", "dag_name", "outputs", "progress", "run_id")

    def __init__(
        self,
        dag_name: str,
        run_id: str,
        outputs: dict[str, Any],
        cache: Mapping[str, Any],
        app_data: Any,
        progress: Callable[[str, int, Any], Awaitable[None]] | None,
    ) -> None:
        self.dag_name = dag_name
        self.run_id = run_id
        #: every succeeded node's outputs, by id (`RunState.outputs`)
        self.outputs = outputs
        self.cache = cache
        self.app_data = app_data
        self.progress = progress


_FIELDS = tuple(field.name for field in attrs.fields(NodeCtx))


class LiveCtx(NodeCtx):
    """A `NodeCtx` whose fields are read from the node and the run when asked for."""

    # Slots of its own: the fields' slots (NodeCtx's) stay empty, shadowed by the
    # properties below.
    __slots__ = ("_attempt", "_inputs", "_node", "_shared", "_upstream")
    _attempt: int
    _inputs: Mapping[str, Any]
    _node: Node
    _shared: RunShared
    _upstream: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> NodeCtx:  # type: ignore[misc]
        # Called only as ``LiveCtx(...)``, which `attrs.evolve` does with every field:
        # a plain NodeCtx is what that means. The run builds its own with `live`.
        return NodeCtx(*args, **kwargs)

    @property
    def dag_name(self) -> str:
        return self._shared.dag_name

    @property
    def node_id(self) -> str:
        return self._node.id

    @property
    def run_id(self) -> str:
        return self._shared.run_id

    @property
    def inputs(self) -> Mapping[str, Any]:
        # Taken at dispatch: a held node retried with new inputs gets a new spec, and
        # a context kept from an earlier attempt must still show that attempt's.
        return self._inputs  # read-only already (see `_model.frozen`)

    @property
    def upstream(self) -> Mapping[str, Any]:
        try:
            return self._upstream
        except AttributeError:  # the first read: the slot is empty until then
            pass
        # Deps' outputs are final once they succeeded, and the node started only after
        # all of them did: building it late reads the same values.
        outputs = self._shared.outputs
        upstream = {dep: outputs[dep] for dep in self._node.spec.deps}
        _set_upstream(self, upstream)
        return upstream

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def cache(self) -> Mapping[str, Any]:
        return self._shared.cache

    @property
    def app_data(self) -> Any:
        return self._shared.app_data

    @property
    def branch(self) -> str:
        return self._node.branch

    @property
    def progress(self) -> Callable[[str, int, Any], Awaitable[None]] | None:
        return self._shared.progress

    def frozen(self) -> NodeCtx:
        """The plain `NodeCtx` with the same fields."""
        return NodeCtx(*(getattr(self, name) for name in _FIELDS))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LiveCtx):
            other = other.frozen()
        return self.frozen() == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = NodeCtx.__hash__

    def __repr__(self) -> str:
        return repr(self.frozen())

    def __reduce__(self) -> tuple[Any, ...]:
        return (NodeCtx, tuple(getattr(self, name) for name in _FIELDS))


# A slot's own setter, bound once: NodeCtx's __setattr__ refuses every write (frozen).
# The coordinator's dispatch builds each context with them (`Loop._dispatch`):
# ``new_ctx(LiveCtx)``, then the node, its attempt, its inputs and the run's
# `RunShared`.
new_ctx = object.__new__
_slots = LiveCtx.__dict__
set_node = _slots["_node"].__set__
set_attempt = _slots["_attempt"].__set__
set_inputs = _slots["_inputs"].__set__
set_shared = _slots["_shared"].__set__
_set_upstream = _slots["_upstream"].__set__
