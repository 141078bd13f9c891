"""dagtrio's pytest plugin (entry point ``pytest11``): fixtures for testing your own DAGs.

Installed with dagtrio; pytest loads it by itself. Both fixtures are session-scoped
and hold no state, so hypothesis' ``@given`` tests can use them without its health
check against function-scoped fixtures (each example gets a fresh run anyway).

- ``run_graph``: `dagtrio.testing.run_graph`, a whole run in virtual time,
  recorded and checked.
- ``dagtrio_clock``: a factory of autojumping `trio.testing.MockClock` objects, for
  tests that drive ``trio.run`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio.testing

from .runner import RunGraph
from .runner import run_graph as _run_graph

__all__: list[str] = []


@pytest.fixture(scope="session", name="run_graph")
def run_graph_fixture() -> RunGraph:
    """`dagtrio.testing.run_graph`: run specs to the end under a MockClock, checked."""
    return _run_graph


@pytest.fixture(scope="session")
def dagtrio_clock() -> Callable[[], trio.testing.MockClock]:
    """Make an autojumping MockClock (``trio.run(main, clock=dagtrio_clock())``)."""

    def make() -> trio.testing.MockClock:
        return trio.testing.MockClock(autojump_threshold=0)

    return make
