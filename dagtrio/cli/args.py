"""What every subcommand's parser shares: one-line usage errors, argument types.

A leaf: every subcommand module imports it, and it imports none of them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

__all__ = ["FILE", "int_at_least"]

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
