"""``dagtrio serve``: show a journaled run in the browser, following it as it grows.

dagtrio serve JOURNAL [RUN_ID] serves a read-only live view of a run recorded in a
journal: one that another process is running now (dagtrio run --journal, a service)
or one that has finished. It prints the page's URL; the page shows the graph, each
node's outcome, a Gantt chart and the event log, and follows the journal until the
run finishes. Without RUN_ID it shows the journal's latest run; a unique prefix of
an id is enough. The view binds to loopback (127.0.0.1) unless --address says
otherwise. Ctrl-C stops it.

To steer a run (approve, retry, complete, pause) serve it from its own process:
dagtrio run FILE --serve.

Example:
    dagtrio serve runs.db
    dagtrio serve runs.db nightly --address 8421
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import trio

from .._errors import JournalError
from . import report as report_cli
from .args import address, journal_argument, subcommand, web_module

__all__ = ["add_parser", "run"]

_PROG = "dagtrio serve"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers, "serve", "show a journaled run in the browser", __doc__
    )
    journal_argument(parser)
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run (default: the latest)")
    parser.add_argument(
        "--address",
        type=address,
        default=("127.0.0.1", 0),
        metavar="[HOST:]PORT",
        help="where to listen (default: 127.0.0.1 and a free port)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="how often to read the journal for news (default: 0.5)",
    )
    parser.set_defaults(handler=run, parser=parser)
    return parser


class _Printed:
    """A task status that prints the view's URL once it listens."""

    def started(self, url: str) -> None:
        print(f"{_PROG}: the run's live view (read-only): {url}", file=sys.stderr)
        print(f"{_PROG}: Ctrl-C stops it", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Carry out ``dagtrio serve`` with parsed ``args``; return the exit status."""
    web = web_module(_PROG)
    if web is None:
        return 2
    if not args.poll > 0 or args.poll == float("inf"):
        print(f"{_PROG}: error: --poll must be a number of seconds > 0", file=sys.stderr)
        return 2
    try:
        journal = report_cli.open_journal(args.journal)
        try:
            runs = journal.runs()
        finally:
            journal.close()
        run_id = None
        if args.run_id is not None:
            run_id = report_cli.resolve_run_id(args.run_id, runs)
        elif not runs:
            print(f"{_PROG}: error: journal {args.journal} has no runs", file=sys.stderr)
            return 2
    except report_cli.Refusal as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    except JournalError as exc:
        print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyError:
        print(f"{_PROG}: error: journal {args.journal} has no run {args.run_id!r}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    host, port = args.address

    async def main() -> None:
        # Called directly, not in a nursery: a port in use is then a plain OSError.
        await web.serve_journal(
            args.journal, run_id, host=host, port=port, poll=args.poll, task_status=_Printed()
        )

    try:
        trio.run(main)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0
