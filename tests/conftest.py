"""Shared test configuration: hypothesis profiles and small helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Each example is a whole Trio run; wall-clock deadlines would only measure the machine.
settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=False,
    print_blob=True,
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A real `distributed.LocalCluster` of two single-thread worker processes, started
    once for the whole session (its start costs seconds), and a client of it."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        # A free port for its HTTP server: with None, distributed still tries 8787
        # first, and once failed the whole session when that port was taken.
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium, started once (see tests/browser.py).

    Without it the browser tests are skipped on a developer's machine; with ``CI`` set
    they fail instead, so a CI that lost its browser cannot pass by skipping them.
    """
    from browser import Browser, chromium_path

    executable = chromium_path()
    if executable is None:
        message = "no Chromium: apt-get install chromium chromium-driver (Debian's)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright")
    browser = Browser(executable)
    try:
        yield browser
    finally:
        browser.close()
