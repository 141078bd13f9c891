"""What every subcommand's parser shares: one-line usage errors, argument types.

A leaf: every subcommand module imports it, and it imports none of them.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "FILE",
    "import_igraph",
    "int_at_least",
    "address",
    "journal_argument",
    "keep_loaded",
    "subcommand",
]

#: what shell completion offers for an argument that names a file (shtab's ``FILE``,
#: spelt out so that building the parser does not need shtab)
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage first, which for `bench` is many lines; one
        # line that names the problem is easier to read in a log.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type=`` for integers >= ``minimum``, with a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def import_igraph() -> None:
    """Import igraph without the matplotlib it would import for its plotting.

    igraph imports ``matplotlib.pyplot`` at import time whenever matplotlib is
    installed, which is half a second of every ``dagtrio run`` and ``dagtrio graph``
    (dagtrio draws no graph with igraph). In the command's own process, and only
    when nothing imported matplotlib yet, the import is blocked for that moment:
    igraph then keeps a stand-in for its plotting, and matplotlib still imports
    normally afterwards (``--gantt``). A library must not do this to its users'
    processes, which may plot with igraph; the command line may.
    """
    if "igraph" in sys.modules or "matplotlib" in sys.modules:
        return
    sys.modules["matplotlib"] = None  # type: ignore[assignment]  # import now fails
    try:
        import igraph  # noqa: F401
    finally:
        del sys.modules["matplotlib"]


def keep_loaded() -> None:
    """Tell the cyclic garbage collector that what is loaded now stays.

    After a large DAG file is loaded its specs live until the command ends; without
    this, every full collection during the run walks all of them again. No collection
    comes first: loading leaves no cycles to collect (what it dropped went with its
    last reference), and one would walk the whole file's objects once more, a tenth
    of `dagtrio graph`'s time on 100 000 nodes.
    """
    gc.freeze()


def subcommand(subparsers: Any, name: str, help: str, doc: str | None, **extra: Any) -> Any:
    """A subcommand's parser: its one-line ``help`` in the command list, and its
    module's docstring (``doc``, reST quotes dropped) as the description, kept as
    written so that its examples stay examples."""
    return subparsers.add_parser(
        name,
        help=help,
        description=(doc or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **extra,
    )


def journal_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``JOURNAL`` of the commands that read one, completed as a file."""
    journal = parser.add_argument("journal", type=Path, metavar="JOURNAL", help="a journal file")
    journal.complete = FILE  # type: ignore[attr-defined]  # read by shtab


def address(text: str) -> tuple[str, int]:
    """An argparse ``type=`` for ``PORT``, ``HOST:PORT`` or ``[IPV6]:PORT`` (a view's)."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host, port_text = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PORT or HOST:PORT, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be from 0 to 65535, got {port}")
    return host, port


def web_module(prog: str) -> Any:
    """`dagtrio.web`; ``None`` once a line naming the extra to install is printed."""
    try:
        from .. import web
    except ImportError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return None
    return web
