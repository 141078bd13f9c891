"""Sphinx configuration of dagtrio's documentation (built in CI, its examples run)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

project = "dagtrio"
author = "dagtrio's founding engineers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
# Docstrings write `Name` for a name of the API, as trio's do: shown as code.
default_role = "code"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
exclude_patterns = ["_build"]
html_theme = "alabaster"
# The tutorial's testcode blocks run against the installed package, a namespace per
# group. Docstrings' ``>>>`` fragments are illustrations of one call, not programs.
doctest_test_doctest_blocks = ""
doctest_global_setup = f"""
import trio
import trio.testing
from pathlib import Path
ROOT = Path({str(ROOT)!r})
"""
