"""matplotlib, for the figures dagtrio draws (``bench --plot``, ``graph --gantt``).

The one module that imports matplotlib (the ``plot`` extra), and only when a figure
is drawn, so that ``import dagtrio`` stays light and a missing matplotlib is one
clear message rather than an ImportError.
"""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["available", "missing", "pyplot"]


def available() -> bool:
    """True if matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def missing(option: str) -> str:
    """What to tell a user who asks for ``option`` without matplotlib."""
    return f"{option} needs matplotlib, which is not installed (pip install 'dagtrio[plot]')"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
