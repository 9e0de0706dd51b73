"""Shared pieces of the study tests: tiny study configs and reading a study's runs back from MLflow."""

from __future__ import annotations

import mlflow

from workbench.study import StudyConfig

WARN_ONLY = ["tilt", "underexposed", "overexposed", "clipped_highlights", "colour_cast", "skin_hue"]
TINY_TRAIN = {"max_train_steps": 4, "validation_steps": 0, "num_class_images": 2, "checkpointing_steps": 0}


def tiny_study(**overrides) -> StudyConfig:
    """Two LoRA recipes (tiny-demo, and tiny-demo at rank 2) on the offline ladder; cells of a few seconds."""
    base = dict(
        name="tiny-study", testset="ladder", intake={"warn_only": WARN_ONLY},
        methods=[{"name": "lora-r4", "train": "tiny-demo", "train_overrides": TINY_TRAIN},
                 {"name": "lora-r2", "train": "tiny-demo", "train_overrides": {**TINY_TRAIN, "rank": 2}}],
        images_per_cell=2, generate_steps=2, seeds=[0], min_identities=2, n_boot=200,
    )  # fmt: skip
    return StudyConfig(**{**base, **overrides})


def cell_runs(study_id: str) -> list:
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(
        experiments, f"tags.`workbench.study.id` = '{study_id}' and tags.`workbench.stage` = 'cell'"
    )


def children(run_id: str) -> dict[str, object]:
    """stage -> the child run of ``run_id``."""
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{run_id}'")
    return {r.data.tags["workbench.stage"]: r for r in runs}
