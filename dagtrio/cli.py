"""The ``dagtrio`` command line (also ``python -m dagtrio``).

Subcommands: ``bench`` (throughput on generated graphs, see `dagtrio.bench.cli`) and
``report`` (what the runs in a journal did, see `dagtrio.report_cli`). ``run`` and
``graph`` are still to come (DESIGN.md §5).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

__all__ = ["build_parser", "int_at_least", "main"]


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


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``dagtrio`` command and all its subcommands."""
    from . import __version__, report_cli
    from .bench import cli as bench_cli

    parser = _Parser(prog="dagtrio", description=(__doc__ or "").split("\n\n")[0].replace("``", ""))
    parser.add_argument("--version", action="version", version=f"dagtrio {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    bench_cli.add_parser(subcommands)
    report_cli.add_parser(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dagtrio`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Bad arguments print one line on stderr and return 2 rather than raising
    `SystemExit`, so this can be called in-process (tests, notebooks).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            # Blame the subcommand, whose options these were meant to be.
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    args.argv = argv
    return int(args.handler(args))
