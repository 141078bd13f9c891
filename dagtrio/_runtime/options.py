"""What a run takes from the coordinator that starts it: its options, checked once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._actions.executor import Executor
from .._actions.registry import ActionRegistry
from .._durable.sqlite import SqliteJournal
from .._hooks.hook import EventHook
from .instruments import Instrument

__all__ = ["HookErrors", "OnFailure", "Order", "RunOptions"]

OnFailure = Literal["skip", "fail_fast", "hold"]
HookErrors = Literal["fail", "isolate"]
Order = Literal["fifo", "critical_path"]


@attrs.frozen
class RunOptions:
    """A `Coordinator`'s configuration as one run sees it (the coordinator checks it).

    A value, not the coordinator itself: the run needs nothing else of it, and the
    coordinator module builds runs, so the run module must not import it back.
    """

    registry: ActionRegistry
    hooks: tuple[EventHook, ...]
    max_parallel: int
    event_capacity: int
    command_capacity: int
    on_failure: OnFailure
    hook_errors: HookErrors
    journal: SqliteJournal | None
    cache: SqliteJournal | None
    app_data: Any
    executors: Mapping[str, Executor] = attrs.field(factory=dict)
    order: Order = "fifo"
    limits: Mapping[str, int] = attrs.field(factory=dict)
    #: seconds per attempt of each action, from the journal (``order="critical_path"``)
    estimates: Mapping[str, float] = attrs.field(factory=dict)
    instruments: tuple[Instrument, ...] = ()
