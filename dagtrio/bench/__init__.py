"""Benchmarks of dagtrio: graph generators, baseline schedulers, and ``dagtrio bench``.

- `dagtrio.bench.generators`: ``chain``, ``fan``, ``layered``, ``random_dag`` and the
  ``growth`` workload, as `NodeSpec` lists (and as plain index graphs for baselines).
  dagtrio's tests use them too.
- `dagtrio.bench.baselines`: ``trio_floor``, ``trio_minimal``, ``trio_pooled``,
  ``trio_naive``, ``graphlib_trio``, ``dask_threads``, ``dask_sync``, and the check
  that a scheduler is correct.
- `dagtrio.bench.runners`: every runner by name, checked then timed the same way.
- `dagtrio.bench.workflow`: WfCommons instances run in virtual time, for the makespan
  of each start order (``dagtrio bench --shape workflow``).
- `dagtrio.bench.worker` (one runner in one process), `driver` (a subprocess per
  runner), `results` (figures and the ``--json`` schema) and `plot`. The command,
  ``dagtrio bench``, is `dagtrio.cli.bench`.

See ``benchmarks/README.rst`` for what each runner measures and figures.
"""

from .generators import Growth as Growth
from .generators import chain as chain
from .generators import fan as fan
from .generators import growth as growth
from .generators import layered as layered
from .generators import random_dag as random_dag

__all__ = ["Growth", "chain", "fan", "growth", "layered", "random_dag"]
