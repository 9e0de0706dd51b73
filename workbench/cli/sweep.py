"""``workbench sweep``."""

from __future__ import annotations

import json as jsonlib


def sweep(recipe: str, json: bool = False, workspace: str | None = None) -> int:
    """Run a hyperparameter sweep: train, generate and evaluate every cell of a grid, as nested MLflow runs.

    The sweep file (see experiments/sweeps/) names the training recipe, the subject and the grid of training
    options; the parent run logs sweep/results.csv with one row per cell.

    Args:
        recipe: Sweep YAML file, e.g. experiments/sweeps/lora-rank-lr.yaml.
        json: Print the results table as JSON.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.sweep import SweepConfig, run_sweep
    from workbench.workspace import Workspace

    result = run_sweep(SweepConfig.from_yaml(recipe), Workspace.resolve(workspace))
    if json:
        print(jsonlib.dumps(result.to_json(), indent=2, default=str))
    else:
        print(f"sweep run {result.run_id}: {len(result.rows)} cells")
        for row in result.rows:
            print(
                "  "
                + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            )
    return 0
