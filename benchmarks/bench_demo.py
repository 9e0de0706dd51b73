"""Time the offline demo's stages: intake, train, generate, evaluate (tiny preset, CPU).

    .venv/bin/python benchmarks/bench_demo.py [--repeats 3]

Each repeat runs the whole demo in a fresh workspace (the built tiny model is cached once, as after set-up).
Prints the median of each stage and of the whole demo, plus the one-off import time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    from workbench.demo import DemoConfig, run_demo
    from workbench.workspace import CACHE_ENV_VAR, Workspace

    import_s = time.perf_counter() - start
    cache = tempfile.mkdtemp(prefix="bench-cache-")
    os.environ[CACHE_ENV_VAR] = cache
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    totals, stages = [], {}
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
            start = time.perf_counter()
            summary = run_demo(DemoConfig(), Workspace.resolve(Path(tmp)))
            totals.append(time.perf_counter() - start)
            for stage, seconds in summary.timings_s.items():
                stages.setdefault(stage, []).append(seconds)
            print(f"repeat {i + 1}: {totals[-1]:.1f} s  {summary.timings_s}")

    print(f"\nimport workbench stages: {import_s:.1f} s (once per process)")
    print(f"{'stage':<10} {'median s':>9}")
    for stage, values in stages.items():
        print(f"{stage:<10} {statistics.median(values):>9.2f}")
    print(
        f"{'total':<10} {statistics.median(totals):>9.2f}   (first repeat includes building the tiny model)"
    )


if __name__ == "__main__":
    main()
