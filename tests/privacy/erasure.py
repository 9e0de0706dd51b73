"""What the erasure tests share: a subject's run through every stage, and the searches for what must be gone."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import ViewType

from workbench.workspace import Workspace


# -- a subject's run through every stage ------------------------------------------------------------------------
@dataclass
class SubjectRun:
    subject: str
    run_ids: list[str]


def run_stages(
    subject: str, workspace: Workspace, *, photos=None, intake_run_id: str | None = None
) -> SubjectRun:
    """intake (unless it ran already, e.g. through the app) -> train (2 steps) -> generate (2 images) -> eval."""
    from workbench.evaluate import EvalConfig, run_eval
    from workbench.generate import GenerateConfig, run_generate
    from workbench.intake import IntakeConfig, run_intake
    from workbench.train import TrainConfig, run_train

    if intake_run_id is None:
        config = IntakeConfig(
            resolution=64, log_originals=True
        )  # photos in the artifact store: the worst case
        intake_run_id = run_intake(subject, config, workspace=workspace, photos=photos).run_id
    recipe = TrainConfig.from_yaml("tiny-demo").replace(model="tiny", max_train_steps=2, validation_steps=0)
    trained = run_train(subject, recipe, workspace=workspace)
    generated = run_generate(subject, GenerateConfig(model="tiny", lora=str(trained.lora_file),
                             presets=["corporate"], count=2, steps=2), workspace=workspace)  # fmt: skip
    evaluated = run_eval(subject, EvalConfig(), workspace=workspace, images=generated.out_dir)
    return SubjectRun(subject, [intake_run_id, *(r.run_id for r in (trained, generated, evaluated))])


# -- what must be gone ---------------------------------------------------------------------------------------------
def personal_files(workspace: Workspace, subject: str) -> list[Path]:
    """The subject's photos and aligned face crops as the workspace holds them (collect before forgetting)."""
    files = [p for p in workspace.originals_dir(subject).glob("*") if p.is_file()]
    files += sorted(workspace.dataset_dir(subject).glob("*.png"))
    assert files, f"no photos or crops of {subject} to look for"
    return files


def leaks(roots: Iterable[Path], needles: list[bytes]) -> list[str]:
    """Every file under ``roots`` whose bytes contain, or whose SHA-256 equals, one of ``needles``."""
    digests = {hashlib.sha256(n).hexdigest() for n in needles}
    found = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() in digests or any(n in data for n in needles):
                found.append(str(path))
    return found


def mentions(roots: Iterable[Path], text: str) -> list[str]:
    needle = text.encode()
    return [str(p) for r in roots for p in Path(r).rglob("*") if p.is_file() and needle in p.read_bytes()]


def tracking_traces(client: mlflow.MlflowClient, subject: str) -> list[str]:
    """Runs, tags, params, registered models and model versions that name ``subject`` (deleted ones too)."""
    found = []
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL) if experiments else []
    for run in runs:
        named = {**run.data.tags, **run.data.params, "run_name": run.info.run_name or ""}
        found += [f"run {run.info.run_id} {k}={v}" for k, v in named.items() if subject in str(v)]
    for model in client.search_registered_models():
        if subject in model.name or subject in str(model.tags):
            found.append(f"registered model {model.name}")
    for version in client.search_model_versions():
        if (
            subject in version.name
            or subject in str(version.tags)
            or version.run_id in {r.info.run_id for r in runs}
        ):
            found.append(f"model version {version.name}/{version.version}")
    return found
