"""Where actions run: threads, worker processes, a Dask cluster.

The coordinator stays in the Trio process; only actions move. Name executors in the
`Coordinator`, then choose one per action or per node::

    from dagtrio.executors import ProcessExecutor

    @registry.action(executor="process")
    def crunch(ctx):  # a sync function: it runs in a worker process
        return sum(i * i for i in range(ctx.inputs["n"]))

    coordinator = Coordinator(registry, executors={"process": ProcessExecutor()})

``"inline"`` (the node's Trio task) and ``"thread"`` (a worker thread) always exist.
`ProcessExecutor` needs the ``process`` extra (``pip install "dagtrio[process]"``),
`DaskExecutor` the ``dask`` extra; importing this package imports neither.

Every cancelled or timed-out attempt says what became of its work (`Ending`):
``"killed"``, ``"abandoned"`` or ``"finished"``, in its event and its record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._actions.executor import Executor as Executor
from .._actions.executor import PortableCtx as PortableCtx
from .._actions.executor import ThreadExecutor as ThreadExecutor
from .._model.spec import Ending as Ending

if TYPE_CHECKING:
    from .dask import DaskExecutor as DaskExecutor
    from .process import ProcessExecutor as ProcessExecutor

__all__ = [
    "DaskExecutor",
    "Ending",
    "Executor",
    "PortableCtx",
    "ProcessExecutor",
    "ThreadExecutor",
]


def __getattr__(name: str) -> Any:
    # The heavy executors import their engine: only when asked for.
    if name == "ProcessExecutor":
        from .process import ProcessExecutor

        return ProcessExecutor
    if name == "DaskExecutor":
        from .dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'dagtrio.executors' has no attribute {name!r}")


def _fixup_module_metadata() -> None:
    for name in ("Executor", "PortableCtx", "ThreadExecutor"):
        globals()[name].__module__ = __name__


_fixup_module_metadata()
del _fixup_module_metadata
