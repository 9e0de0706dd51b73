"""One cell of a study: intake -> (train) -> generate -> evaluate for one identity, method and seed.

A plain function (the Ray task wraps it, a test or a debugger calls it directly). Its stage runs nest under
one ``cell`` run, which nests under the study's parent run through the ``mlflow.parentRunId`` tag: a worker on
another machine has no active run to nest under, only the ids it was given.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any

from workbench.stage import StageEvents
from workbench.study.config import CellConfig

STAGE_TAG = "workbench.stage"
STUDY_TAG = "workbench.study.id"
CELL_TAG = "workbench.study.cell_id"
# The per-cell figures the study report aggregates, from the eval run's flat metrics (missing when not
# measured, e.g. no face found on the tiny preset's noise images).
REPORT_METRICS: dict[str, str] = {
    "likeness_distance": "likeness.median_distance",
    "verification_rate": "likeness.verification_rate",
    "face_found_rate": "likeness.face_found_rate",
    "delta_L": "skin.delta_L",
    "delta_e2000": "skin.delta_e2000",
    "lightening_rate": "skin.lightening_rate",
    "usable_yield": "ranking.usable_yield",
    "detect_auc": "detect.auc",
}


def cell_subject(cell: CellConfig) -> str:
    """Each cell has its own subject folder, so parallel cells of one identity never share files."""
    return f"{cell.identity[:40]}-{cell.cell_id()[:10]}"


def run_cell(
    cell: CellConfig,
    *,
    workspace_root: str,
    tracking_uri: str,
    experiment: str,
    parent_run_id: str,
    events: StageEvents | None = None,
) -> dict[str, Any]:
    """Run the cell's stages under its own MLflow run; returns ``{cell_id, run_id, metrics, ...}``."""
    import mlflow

    from workbench.evaluate import load_suite, run_eval
    from workbench.generate import GenerateConfig, run_generate
    from workbench.intake import IntakeConfig, run_intake
    from workbench.models import resolve_model
    from workbench.tracking import log_json, stage_run
    from workbench.tracking.runs import EXPERIMENT_ENV_VAR
    from workbench.train import TrainConfig, run_train
    from workbench.workspace import Workspace

    # A worker logs where the driver logs, whatever its own environment says.
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ[EXPERIMENT_ENV_VAR] = experiment
    workspace = Workspace(Path(workspace_root))
    events = events or StageEvents()
    subject, cell_id, method = cell_subject(cell), cell.cell_id(), cell.method
    tags = {
        "mlflow.parentRunId": parent_run_id, STUDY_TAG: cell.study_id, CELL_TAG: cell_id,
        "workbench.study.identity": cell.identity, "workbench.study.method": method["name"],
        "workbench.study.seed": str(cell.seed), "workbench.study.worker": f"{socket.gethostname()}:{os.getpid()}",
        **{f"workbench.study.group.{k}": str(v) for k, v in cell.groups.items()},
    }  # fmt: skip
    run_name = f"{cell.identity}/{method['name']}/s{cell.seed}"
    with stage_run(workspace, "cell", cell, subject_id=subject, run_name=run_name, tags=tags) as run:
        source = resolve_model(cell.model, workspace.cache_dir)
        intake_config = IntakeConfig(resolution=source.resolution).with_overrides(cell.intake)
        intake = run_intake(subject, intake_config, workspace=workspace, events=events, photos=cell.photos)
        lora, train_loss, train_run = None, float("nan"), None
        if method.get("train"):
            recipe = TrainConfig.from_yaml(method["train"]).replace(model=cell.model, seed=cell.seed)
            recipe = recipe.with_overrides(method.get("train_overrides") or {})
            trained = run_train(subject, recipe, workspace=workspace, events=events)
            lora, train_loss, train_run = str(trained.lora_file), trained.final_loss, trained.run_id
        batch = GenerateConfig(model=cell.model, lora=lora, presets=cell.presets, count=cell.images,
                               steps=cell.generate_steps, seed=cell.seed)  # fmt: skip
        batch = batch.with_overrides(method.get("generate") or {})
        generated = run_generate(subject, batch, workspace=workspace, events=events)
        evaluated = run_eval(subject, load_suite(cell.eval_suite), workspace=workspace, events=events,
                             images=generated.out_dir)  # fmt: skip
        metrics = {name: evaluated.metrics.get(key, float("nan")) for name, key in REPORT_METRICS.items()}
        metrics["train_loss"] = train_loss
        finite = {f"study.{k}": float(v) for k, v in metrics.items() if _finite(v)}
        mlflow.log_metrics(finite)
        result = {
            "cell_id": cell_id, "run_id": run.info.run_id, "identity": cell.identity, "method": method["name"],
            "seed": cell.seed, "groups": cell.groups, "metrics": {k: float(v) for k, v in metrics.items()},
            "runs": {"intake": intake.run_id, "train": train_run, "generate": generated.run_id,
                     "eval": evaluated.run_id},
        }  # fmt: skip
        log_json(result, "cell/result.json")
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
