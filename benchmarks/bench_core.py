"""How much does dagtrio cost per node? No-op throughput against a minimal Trio scheduler.

    python benchmarks/bench_core.py [--nodes N] [--width W] [--max-parallel P]
                                    [--repeats R] [--hooks H] [--seed S] [...]

A shortcut for ``dagtrio bench --runners trio-minimal,dagtrio`` (any other ``dagtrio
bench`` option works too): the same seeded ``layered`` DAG run by the ``trio-floor``,
``trio-minimal`` and dagtrio, each checked for correctness and then timed in a process
of its own. The generators and baselines live in ``dagtrio.bench``; see
``benchmarks/README.rst``.
"""

from __future__ import annotations

import sys

from dagtrio.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--runners", "trio-minimal,dagtrio", *sys.argv[1:]]))
