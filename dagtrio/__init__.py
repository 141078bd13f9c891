"""dagtrio: a Trio-native runtime for DAGs of async work that grow while they run.

A coordinator task owns the graph; workers run node actions in parallel; hooks watch
the event stream and answer with commands (add nodes, pause or cancel a branch…) that
only the coordinator applies. Every channel is bounded, and cancel scopes give graceful
shutdown and branch cancellation. Start with `run_dag` or `Coordinator.open_run`.
"""

import logging as _logging

from ._actions.registry import ActionRegistry as ActionRegistry
from ._actions.registry import CacheKey as CacheKey
from ._actions.registry import FunctionAction as FunctionAction
from ._actions.registry import NodeAction as NodeAction
from ._durable.records import RunInfo as RunInfo
from ._durable.sqlite import SqliteJournal as SqliteJournal
from ._errors import CommandRejectedError as CommandRejectedError
from ._errors import DagtrioError as DagtrioError
from ._errors import InvalidGraphError as InvalidGraphError
from ._errors import InvalidSpecError as InvalidSpecError
from ._errors import JournalError as JournalError
from ._errors import PermanentError as PermanentError
from ._errors import RunFinishedError as RunFinishedError
from ._errors import UnknownActionError as UnknownActionError
from ._hooks.hook import EventHook as EventHook
from ._hooks.hook import HookContext as HookContext
from ._hooks.stream import EventStream as EventStream
from ._model.commands import AddNode as AddNode
from ._model.commands import AddNodes as AddNodes
from ._model.commands import CancelBranch as CancelBranch
from ._model.commands import CompleteNode as CompleteNode
from ._model.commands import EmitEvent as EmitEvent
from ._model.commands import ExecutorCommand as ExecutorCommand
from ._model.commands import PauseBranch as PauseBranch
from ._model.commands import ResumeBranch as ResumeBranch
from ._model.commands import RetryNode as RetryNode
from ._model.commands import SetNodeInputs as SetNodeInputs
from ._model.convert import converter as converter
from ._model.convert import dumps as dumps
from ._model.convert import loads as loads
from ._model.events import BranchCancelled as BranchCancelled
from ._model.events import BranchPaused as BranchPaused
from ._model.events import BranchResumed as BranchResumed
from ._model.events import CommandRejected as CommandRejected
from ._model.events import CustomEvent as CustomEvent
from ._model.events import ExecutionEvent as ExecutionEvent
from ._model.events import HookFailed as HookFailed
from ._model.events import NodeAdded as NodeAdded
from ._model.events import NodeCancelled as NodeCancelled
from ._model.events import NodeCompleted as NodeCompleted
from ._model.events import NodeFailed as NodeFailed
from ._model.events import NodeProgress as NodeProgress
from ._model.events import NodeRetrying as NodeRetrying
from ._model.events import NodeSkipped as NodeSkipped
from ._model.events import NodeStarted as NodeStarted
from ._model.events import RunIdle as RunIdle
from ._model.events import RunResumed as RunResumed
from ._model.report import NodeRecord as NodeRecord
from ._model.report import RunReport as RunReport
from ._model.spec import NodeCtx as NodeCtx
from ._model.spec import NodeOutput as NodeOutput
from ._model.spec import NodeRef as NodeRef
from ._model.spec import NodeSpec as NodeSpec
from ._model.spec import NodeStatus as NodeStatus
from ._runtime.coordinator import Coordinator as Coordinator
from ._runtime.coordinator import run_dag as run_dag
from ._runtime.coordinator import run_dag_sync as run_dag_sync
from ._runtime.instruments import Attempt as Attempt
from ._runtime.instruments import Instrument as Instrument
from ._runtime.run import Run as Run
from ._runtime.run import RunStatistics as RunStatistics
from ._state.view import GraphView as GraphView

__version__ = "0.1.0"

# A library logs; the application decides where to (the logging HOWTO's advice).
# Without a handler, Python would print dagtrio's warnings on stderr by itself.
_logging.getLogger("dagtrio").addHandler(_logging.NullHandler())


__all__ = [
    "ActionRegistry",
    "AddNode",
    "AddNodes",
    "Attempt",
    "BranchCancelled",
    "BranchPaused",
    "BranchResumed",
    "CacheKey",
    "CancelBranch",
    "CommandRejected",
    "CommandRejectedError",
    "CompleteNode",
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
    "Instrument",
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
    "NodeProgress",
    "NodeRecord",
    "NodeRef",
    "NodeRetrying",
    "NodeSkipped",
    "NodeSpec",
    "NodeStarted",
    "NodeStatus",
    "PauseBranch",
    "PermanentError",
    "ResumeBranch",
    "RetryNode",
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
