"""Memoization across runs: reuse the outputs of a computation already done.

A node opts in through its action's registration (``@registry.action(cache=True)``) or
its own spec (``NodeSpec(cache=True)``), and only under a coordinator given a cache
(``Coordinator(cache=SqliteJournal(...))``). Its cache key is the action name plus a
SHA-256 of a JSON value: by default the node's inputs and its upstream outputs (by
dep id), else whatever the action's key function returns for the `NodeCtx`.

The lookup, and the store after a success, happen in the node's own worker task,
around the action (`Memo.attach` wraps ``Node.call``), so the coordinator never waits
on the disk and nodes without a cache pay nothing. A hit is a success of the attempt
that looked: the action does not run, the outputs are what JSON gives back (lists for
tuples), ``NodeCompleted`` carries ``metadata={"cached": True, "cache_key": key}`` and
the report marks the node ``cached``. Only successes are stored; two nodes with the
same key running at once both compute (the last store wins, with equal outputs for a
deterministic action).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from .._actions.registry import ActionRegistry, CacheKey
from .._model import jsonvalue
from .._model.spec import NodeCtx, NodeOutput
from .sqlite import journal_limiter

if TYPE_CHECKING:
    from .._state.node import Node
    from .sqlite import SqliteJournal

__all__ = ["Memo", "cache_key"]


def cache_key(action: str, value: Any) -> str:
    """The key under which ``action``'s result for ``value`` (a JSON value) is stored.

    `TypeError` / `ValueError` if ``value`` is not a JSON value. Mappings may have keys
    of any JSON scalar type: ``{1: x}`` and ``{"1": x}`` are different inputs, so they
    get different keys (JSON alone would turn both into ``{"1": x}``).
    """
    text = json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return f"{action}:{hashlib.sha256(text.encode()).hexdigest()}"


#: marks a mapping with keys that are not all strings, in `_canonical`'s form
_PAIRS = "\0dagtrio:pairs"


def _canonical(value: Any) -> Any:
    """``value`` as JSON data that tells apart every two values JSON would merge.

    A mapping whose keys are all strings (and none is the marker) stays a mapping, so
    the keys of such values, by far the most common, are those of dagtrio 0.1; any
    other becomes ``{marker: [[key, value], ...]}``, sorted by key.
    """
    if isinstance(value, Mapping):
        if _PAIRS not in value and all(type(key) is str for key in value):
            return {key: _canonical(item) for key, item in value.items()}
        pairs = [[_canonical(key), _canonical(item)] for key, item in value.items()]
        pairs.sort(key=lambda pair: json.dumps(pair[0], sort_keys=True, allow_nan=False))
        return {_PAIRS: pairs}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value


def _default_value(ctx: NodeCtx) -> Any:
    return {"inputs": dict(ctx.inputs), "upstream": dict(ctx.upstream)}


class Memo:
    """A run's side of the cache: decides which nodes use it and wraps their calls."""

    def __init__(self, store: SqliteJournal, registry: ActionRegistry, run_id: str) -> None:
        self.store = store
        self.registry = registry
        self.run_id = run_id

    def wrap(self, node: Node) -> Callable[[NodeCtx], Awaitable[Any]] | None:
        """What ``node``'s worker calls instead of its action, if it uses the cache."""
        policy: CacheKey = self.registry.cache_key(node.spec.action)
        wanted = node.spec.cache
        if wanted is False or (wanted is None and policy is False):
            return None
        key_of = policy if callable(policy) else _default_value
        return self._wrap(node, node.call, key_of)

    def _wrap(
        self,
        node: Node,
        call: Callable[[NodeCtx], Awaitable[Any]],
        key_of: Callable[[NodeCtx], Any],
    ) -> Callable[[NodeCtx], Awaitable[Any]]:
        store = self.store
        action = node.spec.action
        run_id = self.run_id

        async def cached_call(ctx: NodeCtx) -> Any:
            try:
                key = cache_key(action, key_of(ctx))
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"cannot compute the cache key of node {ctx.node_id!r}: its key value is "
                    f"not a JSON value ({exc})"
                ) from None
            hit = await trio.to_thread.run_sync(store._cache_get, key, limiter=journal_limiter())
            if hit is not None:
                outputs = json.loads(hit[0]) if hit[0] is not None else None
                # The state marks the node cached when it applies this success.
                return NodeOutput(outputs, True, {"cached": True, "cache_key": key})
            result = await call(ctx)
            if isinstance(result, NodeOutput):
                if not result.success:
                    return result
                outputs = result.outputs
            else:
                outputs = result
            try:
                text = None if outputs is None else jsonvalue.dumps(outputs)
            except (TypeError, ValueError) as exc:
                return NodeOutput.failed(
                    f"outputs cannot be stored in the cache: {type(exc).__name__}: {exc}"
                )
            # Not abandoned on cancellation: the row is written whole or not at all.
            await trio.to_thread.run_sync(
                store._cache_put,
                key,
                action,
                text,
                run_id,
                ctx.node_id,
                limiter=journal_limiter(),
            )
            return result

        return cached_call
