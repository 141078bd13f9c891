"""``dagtrio bench``: throughput of dagtrio on generated graphs, beside the floor and peers.

Every invocation times the ``trio-floor`` (the cost of Trio itself) and dagtrio on the
same graph; ``--compare`` adds the baselines, ``--journal`` dagtrio recording its runs in
a SQLite journal. Each runner is checked for correctness, then timed ``--repeats`` times,
in a subprocess of its own. The table gives the median and best wall time, nodes/s, peak
memory per node, and the ratio of each median to the floor's, measured in this
invocation. Exit status: 0, 1 if a runner failed its check or crashed, 2 for bad
arguments.

``--shape workflow --workflow FILE.json`` measures something else: a real workflow's
makespan ÷ its lower bound, in FIFO and critical-path order, in virtual time (see
`dagtrio.cli.bench_workflow`).

Example:
    dagtrio bench --shape layered --nodes 20000 --compare
    dagtrio bench --action sleep:0.001 --hooks 1 --json results.json
    dagtrio bench --shape workflow --workflow cycles.json --max-parallel 32,64,128
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ..bench import plot as plotting
from ..bench.driver import run_runner
from ..bench.generators import SHAPES
from ..bench.results import (
    RunnerResult,
    document,
    machine_info,
    set_ratios,
    throughput_ratio,
)
from ..bench.runners import FLOOR, JOURNAL, RUNNERS, runner_names
from ..bench.worker import MEMORY_METHODS
from ..bench.workload import EXECUTORS, ActionKind, Workload, calibrate
from . import bench_workflow
from .args import FILE, int_at_least, subcommand
from .bench_table import describe, notes, table

__all__ = ["add_parser", "run"]


# ------------------------------------------------------------------ argument types


def _slots(text: str) -> list[int]:
    parse = int_at_least(1)
    return sorted({parse(part.strip().replace("_", "")) for part in text.split(",")})


def _sizes(text: str) -> list[int]:
    parse = int_at_least(1)
    sizes = [parse(part.strip().replace("_", "")) for part in text.split(",")]
    return sorted(set(sizes))


def _density(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _runners(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in RUNNERS:
            raise argparse.ArgumentTypeError(
                f"unknown runner {name!r}; choose from {', '.join(RUNNERS)}"
            )
    return names


STDOUT: Literal["-"] = "-"


def _json_file(text: str) -> Path | Literal["-"]:
    # Path("-") would be a file named "-"; write "./-" for that.
    return STDOUT if text == STDOUT else Path(text)


def _plot_file(text: str) -> Path:
    if text == STDOUT:
        raise argparse.ArgumentTypeError(
            "a PNG cannot go to standard output; give a file name (./- for a file named -)"
        )
    return Path(text)


def _action(text: str) -> str:
    try:
        return str(ActionKind.parse(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to a ``dagtrio`` argument parser."""
    parser: argparse.ArgumentParser = subcommand(
        subparsers,
        "bench",
        "throughput of dagtrio on generated graphs, beside the floor and baselines",
        __doc__,
        epilog="runners:\n"
        + "\n".join(f"  {name:<15} {runner.summary}" for name, runner in RUNNERS.items()),
    )
    _graph_arguments(parser.add_argument_group("the graph"))
    _run_arguments(parser.add_argument_group("the run"))
    _measuring_arguments(parser.add_argument_group("measuring"))
    _output_arguments(parser.add_argument_group("output"))
    parser.set_defaults(handler=run, parser=parser)
    return parser


def _graph_arguments(graph: Any) -> None:
    graph.add_argument(
        "--shape",
        choices=(*SHAPES, "workflow"),
        default="layered",
        help="(default: layered); workflow: the --workflow files' makespans, not throughput",
    )
    workflow = graph.add_argument(
        "--workflow",
        type=Path,
        action="append",
        default=[],
        metavar="FILE.json",
        help="with --shape workflow: a WfCommons (WfFormat) instance to run; repeatable",
    )
    workflow.complete = FILE
    graph.add_argument(
        "--nodes",
        type=_sizes,
        default=[20_000],
        metavar="N[,N...]",
        help="nodes in the graph (growth: its final size); several sizes run one after "
        "another, e.g. for --plot (default: 20000)",
    )
    graph.add_argument(
        "--width", type=int_at_least(1), default=100, help="layered/growth: nodes per layer"
    )
    graph.add_argument(
        "--density",
        type=_density,
        default=None,
        help="random: probability of each edge i<j (default: 4/(nodes-1), ~2 deps per node)",
    )
    graph.add_argument(
        "--children",
        type=int_at_least(1),
        default=4,
        metavar="K",
        help="growth: children a hook adds to each marked node as it completes (default: 4)",
    )
    graph.add_argument("--seed", type=int, default=0, help="seed of the random graphs")


def _run_arguments(run_group: Any) -> None:
    run_group.add_argument(
        "--max-parallel",
        type=_slots,
        default=None,
        metavar="N[,N...]",
        help="actions at once (default: 64); several only with --shape workflow "
        f"(default there: {','.join(map(str, bench_workflow.DEFAULT_SLOTS))})",
    )
    run_group.add_argument(
        "--action",
        type=_action,
        default="noop",
        metavar="KIND",
        help="what each node does: noop, sleep:SECONDS or cpu:MICROSECONDS (default: noop)",
    )
    run_group.add_argument(
        "--hooks", type=int_at_least(0), default=0, help="pass-through hooks for dagtrio"
    )
    run_group.add_argument(
        "--readers",
        type=int_at_least(0),
        default=0,
        help="run.events() readers for dagtrio, each reading every event (default: 0)",
    )
    run_group.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="inline",
        help="where dagtrio runs each node: inline (its Trio task, the async action), "
        "thread or process (the sync action, in worker threads or processes; process "
        "needs dagtrio[process]) (default: inline)",
    )


def _measuring_arguments(measure: Any) -> None:
    measure.add_argument(
        "--repeats", type=int_at_least(1), default=3, help="timed runs per runner (default: 3)"
    )
    measure.add_argument(
        "--compare",
        action="store_true",
        help="add the baselines: trio-minimal, trio-pooled, trio-naive, graphlib,"
        " dask-threads, dask-sync",
    )
    measure.add_argument(
        "--runners",
        type=_runners,
        default=None,
        metavar="NAME[,NAME...]",
        help="run these runners (and always the floor) instead of the floor and dagtrio",
    )
    measure.add_argument(
        "--journal",
        action="store_true",
        help=f"add {JOURNAL} (dagtrio with a SqliteJournal in a fresh temporary file per run, "
        "opening it on the clock) and dagtrio, and print the throughput ratio of the two",
    )
    measure.add_argument(
        "--memory",
        choices=MEMORY_METHODS,
        default="tracemalloc",
        help="tracemalloc: peak allocated by one extra untimed run (default); "
        "maxrss: rise of the worker process's peak RSS; none: skip",
    )
    measure.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process instead of one subprocess per runner (for profilers)",
    )


def _output_arguments(out: Any) -> None:
    out.add_argument(
        "--json",
        type=_json_file,
        metavar="FILE",
        help="write the results as JSON; - writes them to stdout, and the tables and notes "
        "then go to stderr",
    )
    out.add_argument(
        "--plot",
        type=_plot_file,
        metavar="FILE.png",
        help="plot nodes/s per runner (needs matplotlib)",
    )
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar or log lines")


# ------------------------------------------------------------------------ running


def _workload(args: argparse.Namespace, nodes: int) -> Workload:
    return Workload(
        shape=args.shape,
        nodes=nodes,
        width=args.width,
        density=args.density,
        k=args.children,
        seed=args.seed,
        action=args.action,
        max_parallel=args.max_parallel,
        hooks=args.hooks,
        readers=args.readers,
        executor=args.executor,
        cpu_rate=_cpu_rate(args),
    )


def _cpu_rate(args: argparse.Namespace) -> float:
    """The machine's `burn` rate, measured once per invocation, for ``cpu`` actions."""
    if not args.action.startswith("cpu"):
        return 0.0
    rate = getattr(args, "cpu_rate", None)
    if rate is None:
        rate = args.cpu_rate = calibrate()
    return float(rate)


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "shape": args.shape,
        "nodes": list(args.nodes),
        "width": args.width,
        "density": args.density,
        "children": args.children,
        "max_parallel": args.max_parallel,
        "action": args.action,
        "hooks": args.hooks,
        "readers": args.readers,
        "executor": args.executor,
        "cpu_rate": _cpu_rate(args),
        "repeats": args.repeats,
        "seed": args.seed,
        "compare": args.compare,
        "runners": _names(args),
        "memory": args.memory,
        "in_process": args.in_process,
        "journal": args.journal,
    }


def _names(args: argparse.Namespace) -> list[str]:
    return runner_names(args.shape, compare=args.compare, only=args.runners, journal=args.journal)


def run(args: argparse.Namespace) -> int:
    """Carry out ``dagtrio bench`` with parsed ``args``; return the exit status."""
    # Refuse what would only fail after a long run.
    problem = None
    if args.plot is not None and not plotting.available():
        problem = plotting.MISSING
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        if isinstance(path, Path) and not path.parent.is_dir():
            problem = f"{option}: the folder {str(path.parent)!r} does not exist"
    if args.shape == "workflow":
        problem = problem or bench_workflow.refusal(args)
    elif args.workflow:
        problem = "--workflow needs --shape workflow"
    elif args.max_parallel is not None and len(args.max_parallel) > 1:
        problem = "several --max-parallel values are only for --shape workflow"
    if problem is not None:
        print(f"dagtrio bench: error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.shape == "workflow":
            return bench_workflow.run(args)
        args.max_parallel = 64 if args.max_parallel is None else args.max_parallel[0]
        return _bench(args)
    except KeyboardInterrupt:
        print("dagtrio bench: interrupted", file=sys.stderr)
        return 130


def _bench(args: argparse.Namespace) -> int:
    errors = Console(stderr=True)
    # With --json -, stdout carries the JSON document alone; the tables go to stderr.
    console = errors if args.json == STDOUT else Console()
    names = _names(args)
    machine = machine_info()
    packages = machine["packages"]
    show_progress = not args.quiet and errors.is_terminal
    results: list[RunnerResult] = []
    journal: list[dict[str, Any]] = []
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not show_progress,
    )
    console.print(
        f"python {machine['python']} · trio {packages['trio']} · dagtrio {packages['dagtrio']}"
        + (f" · dask {packages['dask']}" if packages["dask"] else "")
        + f" · {machine['system']} {machine['machine']}, {machine['cpu_count']} CPUs",
        highlight=False,
        soft_wrap=True,
    )
    with progress:
        total = len(args.nodes) * len(names) * _steps(args)
        overall = progress.add_task("total", total=total)
        log = errors if not args.quiet and not show_progress else None
        for nodes in args.nodes:
            size_results = _measure(args, nodes, names, progress, overall, log)
            set_ratios(size_results, FLOOR)
            results.extend(size_results)
            ratio = _print_size(args, console, size_results)
            if ratio is not None:
                journal.append({"nodes": size_results[-1].nodes, "throughput_ratio": ratio})
    for note in notes(args, results):
        console.print(f"  {note}", highlight=False, markup=False, soft_wrap=True)
    _write(args, console, machine, results, journal)
    sys.stdout.flush()
    return 1 if any(r.status == "failed" for r in results) else 0


def _steps(args: argparse.Namespace) -> int:
    """Progress steps of one runner: the check run, the timed runs, the memory run."""
    memory_run = 0 if args.memory == "none" else 1
    return 1 + int(args.repeats) + memory_run


def _measure(
    args: argparse.Namespace,
    nodes: int,
    names: Sequence[str],
    progress: Progress,
    overall: Any,
    log: Console | None,
) -> list[RunnerResult]:
    """Every runner's result on the graph of ``nodes`` nodes, one runner after another."""
    workload = _workload(args, nodes)
    steps = _steps(args)
    size_results = []
    for name in names:
        task = progress.add_task(f"{name} · {nodes:,} nodes", total=steps)
        done = [0]

        def on_event(event: dict[str, Any], task: Any = task, done: list[int] = done) -> None:
            kind = event.get("event")
            if kind in ("checked", "time", "memory"):
                done[0] += 1
                progress.advance(task)
                progress.advance(overall)
            elif kind in ("error", "skipped"):
                progress.advance(overall, steps - done[0])

        if log is not None:
            log.print(f"measuring {name} on {nodes:,} nodes…", highlight=False, markup=False)
        result = run_runner(
            name,
            workload,
            repeats=args.repeats,
            memory=args.memory,
            in_process=args.in_process,
            on_event=on_event,
        )
        progress.remove_task(task)
        size_results.append(result)
    return size_results


def _print_size(
    args: argparse.Namespace, console: Console, size_results: Sequence[RunnerResult]
) -> float | None:
    """Print one graph size's table; return journal on ÷ off if both were measured."""
    edges = next((r.edges for r in size_results if r.edges is not None), None)
    console.print(
        describe(args, size_results[-1].nodes, edges),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(table(size_results))
    ratio = throughput_ratio(size_results, JOURNAL, "dagtrio")
    if ratio is not None:
        console.print(
            f"  journal on ÷ off: {ratio:.2f}x the throughput "
            f"({JOURNAL} nodes/s ÷ dagtrio nodes/s)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return ratio


def _write(
    args: argparse.Namespace,
    console: Console,
    machine: dict[str, Any],
    results: Sequence[RunnerResult],
    journal: list[dict[str, Any]],
) -> None:
    """Write the --json document and the --plot figure, if asked for."""
    command = shlex.join(["dagtrio", *args.argv])
    if args.json is not None:
        data = document(
            command=command,
            parameters=_parameters(args),
            machine=machine,
            results=results,
            journal=journal,
        )
        text = json.dumps(data, indent=2) + "\n"
        if args.json == STDOUT:
            sys.stdout.write(text)
        else:
            args.json.write_text(text)
            if not args.quiet:
                console.print(f"  results written to {args.json}", highlight=False, markup=False)
    if args.plot is not None:
        title = f"dagtrio bench: {args.shape}, {args.action}, max_parallel {args.max_parallel}"
        plotting.plot(results, args.plot, title=title)
        if not args.quiet:
            console.print(f"  plot written to {args.plot}", highlight=False, markup=False)
