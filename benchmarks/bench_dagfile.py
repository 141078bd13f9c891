"""DAG files at scale: loading, checking and the critical path, beside a run.

    python benchmarks/bench_dagfile.py                 # 100 000 nodes JSON, 20 000 YAML
    python benchmarks/bench_dagfile.py --nodes 50000 --repeat 5

Issue 14's targets: ``dagtrio graph`` on a 100 000-node file (validation plus the
critical path) in under 2 s, and loading a 20 000-node YAML file must not dominate
``dagtrio run`` of that file. Each figure is the median of ``--repeat`` runs in this
process (imports warm, as in a long-lived process; the CLI adds its start-up, about
0.5 s here, on top), except the last: ``dagtrio run FILE --quiet`` itself, timed whole
in a process of its own, of which loading is the share shown. The graph is a binary
tree whose node ``i`` depends on ``(i - 1) // 2``, with inputs and an estimate per
node, as a generated pipeline has.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagtrio
from dagtrio._model.graph import shape
from dagtrio._specfile.schema import load_file


def _nodes(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"n{i}",
            "action": "work",
            **({"deps": [f"n{(i - 1) // 2}"]} if i else {}),
            "inputs": {"k": i},
            "estimate": 0.001 * (i % 7),
        }
        for i in range(n)
    ]


def _yaml(n: int) -> str:
    lines = ["dag: big", "actions: bench_dagfile_actions", "nodes:"]
    for node in _nodes(n):
        lines.append(f"  - id: {node['id']}")
        lines.append("    action: work")
        if "deps" in node:
            lines.append(f"    deps: [{node['deps'][0]}]")  # type: ignore[index]
        lines.append(f"    inputs: {{k: {node['inputs']['k']}}}")  # type: ignore[index]
        lines.append(f"    estimate: {node['estimate']}")
    return "\n".join(lines) + "\n"


_ACTIONS = """
import dagtrio

registry = dagtrio.ActionRegistry()


@registry.action()
async def work(ctx: dagtrio.NodeCtx) -> None:
    return None
"""


def _median(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _graph(path: Path) -> None:
    # What `dagtrio graph FILE` does between its start-up and its printing.
    dag = load_file(path)
    weights = [spec.estimate or 0.0 for spec in dag.specs]
    shape(len(dag.specs), dag.edges, weights, dag.order)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000, help="nodes of the JSON file")
    parser.add_argument("--yaml-nodes", type=int, default=20_000, help="nodes of the YAML file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "big.json"
        big.write_text(json.dumps({"actions": "x", "nodes": _nodes(args.nodes)}))
        yaml_file = Path(folder) / "big.yaml"
        yaml_file.write_text(_yaml(args.yaml_nodes))
        _graph(big)  # warm: imports (igraph, cattrs' generated code)
        graph_s = _median(args.repeat, lambda: _graph(big))
        print(
            f"graph (load + check + levels + critical path), {args.nodes:,} nodes JSON:"
            f" {graph_s:.2f} s"
        )
        load_s = _median(args.repeat, lambda: load_file(yaml_file))
        specs = list(load_file(yaml_file).specs)
        registry = dagtrio.ActionRegistry()

        @registry.action()
        async def work(ctx: dagtrio.NodeCtx) -> None:
            return None

        run_s = _median(args.repeat, lambda: dagtrio.run_dag_sync(specs, registry))
        print(
            f"load {args.yaml_nodes:,} nodes YAML: {load_s:.2f} s;"
            f" run them (no-op actions): {run_s:.2f} s;"
            f" loading is {100 * load_s / (load_s + run_s):.0f}% of the two"
        )
        (Path(folder) / "bench_dagfile_actions.py").write_text(_ACTIONS)
        command = [sys.executable, "-m", "dagtrio", "run", str(yaml_file), "--quiet"]
        cli_s = _median(args.repeat, lambda: subprocess.run(command, check=True, cwd=folder))
        print(
            f"dagtrio run FILE --quiet, {args.yaml_nodes:,} nodes YAML: {cli_s:.2f} s;"
            f" loading is {100 * load_s / cli_s:.0f}% of it"
        )


if __name__ == "__main__":
    main()
