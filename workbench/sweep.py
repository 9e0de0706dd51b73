"""Hyperparameter sweeps: a training recipe, a grid of overrides, and the same measurement for every cell.

Each grid cell trains a LoRA, generates a fixed set of images from fixed seeds and evaluates them, all as runs
nested under one parent ``sweep`` run, so the MLflow UI can compare the cells side by side. The parent also
logs ``sweep/results.csv`` (one row per cell: its overrides and metrics).
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import asdict, dataclass
from typing import Any

import mlflow

from workbench.config import StageConfig, field
from workbench.errors import WorkbenchError
from workbench.stage import StageEvents
from workbench.tracking import log_json, stage_run
from workbench.workspace import Workspace


@dataclass
class SweepConfig(StageConfig):
    subject_id: str = field("demo", help="Subject whose intake dataset every cell trains on.")
    recipe: str = field("experiments/train/tiny-demo.yaml", help="Training recipe every cell starts from.")
    model: str | None = field(None, help="Model override for every cell (preset, hub id or folder).")
    grid: dict[str, list[Any]] = field(default_factory=dict, help="Training option -> values to try.")
    presets: list[str] = field(
        default_factory=lambda: ["soft-studio"], help="Style presets generated per cell."
    )
    images_per_cell: int = field(2, help="Images generated per cell (same seeds in every cell).")
    generate_steps: int | None = field(None, help="Denoising steps per image; none = the presets' own.")
    seed: int = field(0, help="Base seed of generation (training seeds come from the recipe).")

    def __post_init__(self) -> None:
        if not self.grid:
            raise WorkbenchError("A sweep needs a 'grid' of training options, e.g. grid: {rank: [4, 8]}.")
        empty = [name for name, values in self.grid.items() if not isinstance(values, list) or not values]
        if empty:
            raise WorkbenchError(f"Sweep grid entries must be non-empty lists; fix: {', '.join(empty)}.")

    def cells(self) -> list[dict[str, Any]]:
        names = sorted(self.grid)
        return [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(self.grid[n] for n in names))
        ]


@dataclass
class SweepResult:
    run_id: str
    rows: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_sweep(config: SweepConfig, workspace: Workspace, events: StageEvents | None = None) -> SweepResult:
    from workbench.evaluate import EvalConfig, run_eval
    from workbench.generate import GenerateConfig, run_generate
    from workbench.train import TrainConfig, run_train

    base = TrainConfig.from_yaml(config.recipe).replace(model=config.model)
    for name in config.grid:
        if not hasattr(base, name):
            raise WorkbenchError(
                f"Sweep grid option '{name}' is not a training option; see `workbench train -h`."
            )
    rows: list[dict[str, Any]] = []
    with stage_run(workspace, "sweep", config, subject_id=config.subject_id) as parent:
        for index, cell in enumerate(config.cells()):
            subject = config.subject_id
            trained = run_train(subject, base.replace(**cell), workspace=workspace, events=events)
            batch = GenerateConfig(
                model=base.model,
                lora=str(trained.lora_file),
                presets=config.presets,
                count=config.images_per_cell,
                steps=config.generate_steps,
                seed=config.seed,  # the same seeds in every cell, so cells differ only by the training option
            )
            generated = run_generate(subject, batch, workspace=workspace, events=events)
            evaluated = run_eval(
                subject, EvalConfig(), workspace=workspace, events=events, images=generated.out_dir
            )
            row = {"cell": index, **cell, "train.final_loss": trained.final_loss}
            row.update(
                {f"eval.{k}": v for k, v in evaluated.metrics.items() if not k.endswith((".lo", ".hi"))}
            )
            row.update(train_run=trained.run_id, generate_run=generated.run_id, eval_run=evaluated.run_id)
            rows.append(row)
        _log_table(rows)
    return SweepResult(parent.info.run_id, rows)


def _log_table(rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    mlflow.log_text(buffer.getvalue(), "sweep/results.csv")
    log_json(rows, "sweep/results.json")
