"""``workbench sweep``."""

from __future__ import annotations

import sys

from workbench.cli.output import print_json, stdout_to_stderr


def sweep(
    recipe: str,
    address: str | None = None,
    num_cpus: int | None = None,
    max_trials: int | None = None,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Run a hyperparameter sweep: Optuna proposes training options, Ray Tune runs the trials (ASHA pruning).

    The sweep file (see experiments/sweeps/) names the training recipe, the subject, the options to search
    (lists or {low, high, log} ranges) and the sampler (grid, random, tpe). Every trial is an MLflow run nested
    under one parent 'sweep' run, which logs sweep/results.csv. The Optuna study is kept in the workspace:
    re-running the same file continues it.

    Args:
        recipe: Sweep YAML file, e.g. experiments/sweeps/lora-rank-lr.yaml.
        address: Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray started for this command).
        num_cpus: CPUs of the local Ray (default: all).
        max_trials: Run at most this many new trials now (the rest on a later run).
        json: Print the results table as JSON.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.sweep import SweepConfig, run_sweep
    from workbench.workspace import Workspace

    with stdout_to_stderr(json):  # only the results go to stdout under --json
        result = run_sweep(SweepConfig.from_yaml(recipe), Workspace.resolve(workspace), address=address,
                           num_cpus=num_cpus, max_trials=max_trials)  # fmt: skip
    if json:
        print_json(result)
    else:
        print(f"sweep run {result.run_id}: {len(result.rows)} trials in Optuna study {result.study_name} "
              f"({result.ran} run now; storage {result.storage})")  # fmt: skip
        for row in result.rows:
            print(
                "  "
                + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
            )
    for error in result.errors:  # a failed trial is not silently missing from the table
        print(f"error: a trial failed: {error}", file=sys.stderr)
    return 1 if result.errors else 0
