"""``dagtrio completion SHELL``: a tab-completion script for bash, zsh or tcsh.

The script is generated from the same argparse parser that runs the commands (with
shtab), so every subcommand and option completes, and file arguments complete file
names. Generate it once and have your shell load it.

Example:
    dagtrio completion bash > ~/.local/share/bash-completion/completions/dagtrio
    dagtrio completion zsh > ~/.zfunc/_dagtrio   # with fpath+=~/.zfunc before compinit

Exit status: 0; 2 for an unknown shell.
"""

from __future__ import annotations

import argparse
from typing import Any

from .args import subcommand

__all__ = ["SHELLS", "add_parser", "run"]

#: the shells shtab writes scripts for
SHELLS = ("bash", "zsh", "tcsh")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``completion`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers,
        "completion",
        "print a shell completion script (bash, zsh, tcsh)",
        __doc__,
    )
    parser.add_argument(
        "shell", choices=SHELLS, metavar="SHELL", help="one of " + ", ".join(SHELLS)
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the completion script for ``args.shell``; return the exit status."""
    import shtab  # only here: every other command runs without it

    # The whole command's parser, which `main` hands every subcommand: this module
    # must not import the package that imports it.
    print(shtab.complete(args.root, shell=args.shell), end="")
    return 0
