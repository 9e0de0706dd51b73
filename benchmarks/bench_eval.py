"""Faces per second through the evaluation suite on CPU (goal: >= 4).

Runs the skin-tone-ladder suite (likeness + skin + ranking + per-group CIs) over the counterfactual ladder
with mirrored copies (8 people x (10 swatches x 2 + 1 reference + 1 holdout) = 176 images at 384 px), after one warm-up
run that builds the ladder and loads the dlib models. Reports the suite's own timing (load, detect once,
embed, skin, rank, group CIs) and the end-to-end time including report, plots and MLflow logging.

    python benchmarks/bench_eval.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        from workbench.evaluate import load_suite, run_eval
        from workbench.evaluate.ladder import build_ladder
        from workbench.workspace import Workspace

        ladder = build_ladder(Path(tmp) / "ladder", flips=True)
        config = load_suite("skin-tone-ladder").replace(testset=str(ladder))
        config = type(config).from_dict({**config.to_dict(), "baseline": None})
        ws = Workspace.resolve(Path(tmp) / "ws")
        run_eval(None, config, workspace=ws)  # warm-up: model loading, dataset cache
        suite_fps, e2e_fps = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = run_eval(None, config, workspace=ws)
            total = time.perf_counter() - start
            timing = result.summary["timing"]
            suite_fps.append(timing["faces_per_second"])
            e2e_fps.append(timing["images"] / total)
        print(json.dumps({
            "images": timing["images"], "cpu_count": os.cpu_count(),
            "suite_faces_per_second": round(statistics.median(suite_fps), 2),
            "end_to_end_faces_per_second": round(statistics.median(e2e_fps), 2),
            "goal": 4.0,
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
