"""dagtrio: a Trio-native runtime for DAGs of async work that grow while they run.

A coordinator task owns the graph; workers run node actions in parallel; hooks watch
the event stream and answer with commands (add nodes, pause or cancel a branch…) that
only the coordinator applies. Every channel is bounded, and cancel scopes give graceful
shutdown and branch cancellation. Start with `run_dag` or `Coordinator.open_run`.
"""

import logging as _logging

from ._actions import ActionRegistry as ActionRegistry
from ._actions import CacheKey as CacheKey
from ._actions import FunctionAction as FunctionAction
from ._actions import NodeAction as NodeAction
from ._commands import AddNode as AddNode
from ._commands import AddNodes as AddNodes
from ._commands import CancelBranch as CancelBranch
from ._commands import EmitEvent as EmitEvent
from ._commands import ExecutorCommand as ExecutorCommand
from ._commands import PauseBranch as PauseBranch
from ._commands import ResumeBranch as ResumeBranch
from ._commands import SetNodeInputs as SetNodeInputs
from ._convert import converter as converter
from ._convert import dumps as dumps
from ._convert import loads as loads
from ._coordinator import Coordinator as Coordinator
from ._coordinator import Run as Run
from ._coordinator import RunStatistics as RunStatistics
from ._coordinator import run_dag as run_dag
from ._coordinator import run_dag_sync as run_dag_sync
from ._errors import CommandRejectedError as CommandRejectedError
from ._errors import DagtrioError as DagtrioError
from ._errors import InvalidGraphError as InvalidGraphError
from ._errors import InvalidSpecError as InvalidSpecError
from ._errors import JournalError as JournalError
from ._errors import RunFinishedError as RunFinishedError
from ._errors import UnknownActionError as UnknownActionError
from ._events import BranchCancelled as BranchCancelled
from ._events import BranchPaused as BranchPaused
from ._events import BranchResumed as BranchResumed
from ._events import CommandRejected as CommandRejected
from ._events import CustomEvent as CustomEvent
from ._events import ExecutionEvent as ExecutionEvent
from ._events import HookFailed as HookFailed
from ._events import NodeAdded as NodeAdded
from ._events import NodeCancelled as NodeCancelled
from ._events import NodeCompleted as NodeCompleted
from ._events import NodeFailed as NodeFailed
from ._events import NodeRetrying as NodeRetrying
from ._events import NodeSkipped as NodeSkipped
from ._events import NodeStarted as NodeStarted
from ._events import RunIdle as RunIdle
from ._events import RunResumed as RunResumed
from ._hooks import EventHook as EventHook
from ._hooks import HookContext as HookContext
from ._journal import RunInfo as RunInfo
from ._journal import SqliteJournal as SqliteJournal
from ._pipeline import EventStream as EventStream
from ._report import NodeRecord as NodeRecord
from ._report import RunReport as RunReport
from ._spec import NodeCtx as NodeCtx
from ._spec import NodeOutput as NodeOutput
from ._spec import NodeRef as NodeRef
from ._spec import NodeSpec as NodeSpec
from ._spec import NodeStatus as NodeStatus
from ._view import GraphView as GraphView

__version__ = "0.1.0"

# A library logs; the application decides where to (the logging HOWTO's advice).
# Without a handler, Python would print dagtrio's warnings on stderr by itself.
_logging.getLogger("dagtrio").addHandler(_logging.NullHandler())


__all__ = [
    "ActionRegistry",
    "AddNode",
    "AddNodes",
    "BranchCancelled",
    "BranchPaused",
    "BranchResumed",
    "CacheKey",
    "CancelBranch",
    "CommandRejected",
    "CommandRejectedError",
    "Coordinator",
    "CustomEvent",
    "DagtrioError",
    "EmitEvent",
    "EventHook",
    "EventStream",
    "ExecutionEvent",
    "ExecutorCommand",
    "FunctionAction",
    "GraphView",
    "HookContext",
    "HookFailed",
    "InvalidGraphError",
    "InvalidSpecError",
    "JournalError",
    "NodeAction",
    "NodeAdded",
    "NodeCancelled",
    "NodeCompleted",
    "NodeCtx",
    "NodeFailed",
    "NodeOutput",
    "NodeRecord",
    "NodeRef",
    "NodeRetrying",
    "NodeSkipped",
    "NodeSpec",
    "NodeStarted",
    "NodeStatus",
    "PauseBranch",
    "ResumeBranch",
    "Run",
    "RunFinishedError",
    "RunIdle",
    "RunInfo",
    "RunReport",
    "RunResumed",
    "RunStatistics",
    "SetNodeInputs",
    "SqliteJournal",
    "UnknownActionError",
    "converter",
    "dumps",
    "loads",
    "run_dag",
    "run_dag_sync",
]


def _fixup_module_metadata() -> None:
    # Every export says it lives in `dagtrio` (trio's fixup_module_metadata, httpcore's
    # loop): reprs, tracebacks, pickles and docs then name the public place, and moving
    # a private module changes none of them.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("dagtrio."):
            obj.__module__ = "dagtrio"


_fixup_module_metadata()
del _fixup_module_metadata
