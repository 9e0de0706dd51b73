"""Study scheduling on Ray: the overhead per cell against a plain loop, and tiny-preset cells per minute.

    python benchmarks/bench_study.py                     # both parts, local Ray with 2 CPUs
    python benchmarks/bench_study.py --skip-tiny --trivial 500

Part 1 runs N trivial cells (a function that returns at once, and one that works 50 ms) as Ray tasks
gathered with the same ray.wait loop the study driver uses, and the same calls in a plain loop. Ray's start
is timed apart: a study pays it once. Part 2 runs a real tiny-preset study (ladder identities x two LoRA
recipes; intake -> train -> generate -> evaluate per cell) through ``run_study`` on 2 CPUs, then the same cells
with ``run_cell`` in a plain loop in one process, and reports cells/min for both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def trivial_cell(i: int, work_s: float = 0.0) -> dict:
    if work_s:
        end = time.perf_counter() + work_s
        while time.perf_counter() < end:  # busy, like a CPU-bound stage
            pass
    return {"cell": i}


def bench_trivial(n: int, num_cpus: int) -> dict:
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    task = ray.remote(num_cpus=1)(trivial_cell)
    ray.get(
        [task.remote(i) for i in range(num_cpus * 2)]
    )  # warm the worker pool, as a study's first cells do
    out = {"ray_init_s": round(init_s, 2), "n": n}
    for work in (0.0, 0.05):
        started = time.perf_counter()
        pending = [task.remote(i, work) for i in range(n)]
        while pending:
            _, pending = ray.wait(pending, num_returns=1, timeout=2.0)
        ray_s = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(n):
            trivial_cell(i, work)
        loop_s = time.perf_counter() - started
        out[f"work_{int(work * 1000)}ms"] = {
            "ray_s": round(ray_s, 3), "loop_s": round(loop_s, 3), "ratio_ray_over_loop": round(ray_s / loop_s, 2)
            if loop_s > 0 else None, "ray_overhead_ms_per_cell": round(1000 * (ray_s - loop_s / num_cpus) / n, 2),
        }  # fmt: skip
    ray.shutdown()
    return out


def bench_tiny(identities: int, num_cpus: int) -> dict:
    from tests.study.helpers import tiny_study
    from workbench.study import expand, run_study
    from workbench.study.cell import run_cell
    from workbench.study.identities import load_identities
    from workbench.tracking import configure_tracking, tracking_uri
    from workbench.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="bench-study-"))
    os.environ.setdefault("WORKBENCH_CACHE", str(root / "cache"))
    config = tiny_study(max_identities=identities, min_identities=1)
    # Warm the caches (tiny model, ladder, class images) so neither side pays them.
    warm = Workspace(root / "warm")
    cells = expand(config, load_identities(config.testset, warm, config.ladder_levels, config.max_identities))
    configure_tracking(warm)
    import mlflow

    parent = mlflow.MlflowClient().create_run(configure_tracking(warm)).info.run_id
    kwargs = {"workspace_root": str(warm.root), "tracking_uri": tracking_uri(warm), "parent_run_id": parent,
              "experiment": "headshot-workbench"}  # fmt: skip
    run_cell(cells[0], **kwargs)
    started = time.perf_counter()
    for cell in cells:
        run_cell(cell, **kwargs)
    loop_s = time.perf_counter() - started
    mlflow.MlflowClient().set_terminated(parent)
    mlflow.set_tracking_uri(None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    result = run_study(config, Workspace(root / "study"), num_cpus=num_cpus, progress=False)
    study_s = time.perf_counter() - started
    return {
        "cells": len(cells), "failed": len(result.failed), "study_s": round(study_s, 1), "loop_s": round(loop_s, 1),
        "study_cells_per_min": round(60 * len(cells) / study_s, 2),
        "loop_cells_per_min": round(60 * len(cells) / loop_s, 2),
        "note": "study_s includes starting Ray and each worker's first imports; loop_s runs in a warm process",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=200, help="Trivial cells in part 1.")
    parser.add_argument(
        "--identities", type=int, default=2, help="Ladder identities in part 2 (x 2 methods)."
    )
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    report = {"trivial": bench_trivial(args.trivial, args.num_cpus)}
    if not args.skip_tiny:
        report["tiny"] = bench_tiny(args.identities, args.num_cpus)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
