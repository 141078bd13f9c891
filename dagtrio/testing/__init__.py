"""Helpers for testing graphs and hooks: hypothesis strategies, a recording hook, checks.

dagtrio's own property tests use these, and so can yours: generate DAGs with
`dags`, run them in virtual time with `run_graph` (also a pytest fixture of that name,
from the plugin `dagtrio.testing.plugin`), watch a run with `RecordingHook`, and let
`check_run` assert the lifecycle rules of DESIGN.md §2 on what was recorded. Needs hypothesis
(``pip install dagtrio[testing]``) for `dags` only.
"""

from .checks import check_run as check_run
from .hooks import RecordingHook as RecordingHook
from .runner import GraphRun as GraphRun
from .runner import RunGraph as RunGraph
from .runner import run_graph as run_graph
from .strategies import GrowthPlan as GrowthPlan
from .strategies import HookSchedule as HookSchedule
from .strategies import dags as dags
from .strategies import growth_plans as growth_plans
from .strategies import hook_schedules as hook_schedules

__all__ = [
    "GraphRun",
    "GrowthPlan",
    "HookSchedule",
    "RecordingHook",
    "RunGraph",
    "check_run",
    "dags",
    "growth_plans",
    "hook_schedules",
    "run_graph",
]


def _fixup_module_metadata() -> None:
    # As in dagtrio's own __init__: exports say where users import them from.
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("dagtrio.testing."):
            obj.__module__ = "dagtrio.testing"


_fixup_module_metadata()
del _fixup_module_metadata
