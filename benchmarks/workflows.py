"""Generate WfCommons workflow instances for ``dagtrio bench --shape workflow``.

Run: ``python benchmarks/workflows.py FOLDER [TASKS] [SEED]`` (default 1000 tasks, seed
0), with the ``wfcommons`` package installed (``pip install wfcommons``; it is not one
of dagtrio's dependencies, and the instances are megabytes each, so none is committed).
Writes one WfFormat file per recipe into FOLDER (Cycles, Montage, Epigenomics,
1000Genome, Seismology, Blast, SoyKB), each built by WfChef from the traces of real
runs, then measure them:

    dagtrio bench --shape workflow --workflow FOLDER/cycles.json --plot orders.png

WfChef's generators draw from Python's and NumPy's global generators, which are seeded
here, so the same SEED gives the same instances with the same wfcommons version.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy
from wfcommons import WorkflowGenerator
from wfcommons.wfchef import recipes

RECIPES = {
    "cycles": recipes.CyclesRecipe,
    "montage": recipes.MontageRecipe,
    "epigenomics": recipes.EpigenomicsRecipe,
    "1000genome": recipes.GenomeRecipe,
    "seismology": recipes.SeismologyRecipe,
    "blast": recipes.BlastRecipe,
    "soykb": recipes.SoykbRecipe,
}


def main(folder: Path, tasks: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, recipe in RECIPES.items():
        random.seed(seed)
        numpy.random.seed(seed)
        workflow = WorkflowGenerator(recipe.from_num_tasks(tasks)).build_workflow()
        path = folder / f"{name}.json"
        workflow.write_json(path)
        print(f"{path}: {len(workflow.nodes)} tasks")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1])
        sys.exit(0 if len(sys.argv) > 1 else 2)
    main(
        Path(sys.argv[1]),
        int(sys.argv[2]) if len(sys.argv) > 2 else 1000,
        int(sys.argv[3]) if len(sys.argv) > 3 else 0,
    )
