"""What the journal holds about a run, as values: its summary and its records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = ["RunInfo", "StoredRun"]


@attrs.frozen
class RunInfo:
    """One run in a journal, as `SqliteJournal.runs` lists it."""

    run_id: str
    dag_name: str
    #: ``"running"`` (still going, or the process died: resumable) or ``"finished"``
    status: str
    started_at: float
    finished_at: float | None
    success: bool | None
    error: str | None
    #: nodes in the graph, as far as the journal knows
    nodes: int


@attrs.frozen
class StoredRun:
    """Everything the journal holds about one run, in order (what resume replays)."""

    info: RunInfo
    options: Mapping[str, Any]
    #: ``(seq, kind, row)`` in ``seq`` order; ``row`` maps column names to values
    records: Sequence[tuple[int, str, Mapping[str, Any]]]
    handled: int
    #: the journal file it was read from, for error messages
    path: str = ""
