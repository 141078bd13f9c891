"""The ``dagtrio`` command line (also ``python -m dagtrio``).

Subcommands, one module each: ``run`` (run a DAG file with a live display, see
`dagtrio.cli.run`), ``graph`` (check a DAG file, its critical path, exports, a run's
Gantt chart, see `dagtrio.cli.graph`), ``bench`` (throughput on generated graphs, see
`dagtrio.cli.bench`), ``report`` (what the runs in a journal did, see
`dagtrio.cli.report`), ``resume`` (finish a journaled run or run parts of it again,
see `dagtrio.cli.resume`), ``serve`` (a journaled run in the browser, see
`dagtrio.cli.serve`) and ``completion`` (a shell completion script, see
`dagtrio.cli.completion`); their shared parser pieces are in `dagtrio.cli.args`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import bench as bench_cli
from . import completion as completion_cli
from . import graph as graph_cli
from . import report as report_cli
from . import resume as resume_cli
from . import run as run_cli
from . import serve as serve_cli
from .args import _Parser

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``dagtrio`` command and all its subcommands."""

    parser = _Parser(prog="dagtrio", description=(__doc__ or "").split("\n\n")[0].replace("``", ""))
    parser.add_argument("--version", action="version", version=f"dagtrio {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_cli.add_parser(subcommands)
    graph_cli.add_parser(subcommands)
    bench_cli.add_parser(subcommands)
    report_cli.add_parser(subcommands)
    resume_cli.add_parser(subcommands)
    serve_cli.add_parser(subcommands)
    completion_cli.add_parser(subcommands)
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
    args.root = parser
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        # Ctrl-C before a command's own handling starts (while igraph imports, or a
        # file loads): the command had done nothing yet; say so, not a traceback.
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
