"""Robustness: a killed run resumes bit-identically on CPU; Ctrl-C ends KILLED; NaN ends FAILED with a reason."""

from __future__ import annotations

import mlflow
import pytest
import torch
from safetensors.torch import load_file

from workbench.errors import TrainingDivergedError, WorkbenchError
from workbench.train import run_train, trainer
from workbench.train.checkpoint import list_checkpoints

# Dropout makes the global RNG matter; validating at step 4 proves sampling does not disturb training.
RESUMABLE = [
    "max_train_steps=8", "checkpointing_steps=2", "checkpoints_total_limit=2", "lora_dropout=0.1",
    "validation_steps=4", "register_model=false", "learning_rate=1e-3",
]  # fmt: skip


def _statuses(subject: str) -> dict[str, str]:
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`workbench.subject_id` = '{subject}'")
    return {r.info.run_name: r.info.status for r in runs}


def _metadata(path: str) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(path, "pt") as handle:
        return handle.metadata()


def _kill_at(monkeypatch, step: int) -> None:
    real = trainer.optimizer_step

    def step_or_die(session):
        if session.step == step:
            raise KeyboardInterrupt  # what Ctrl-C or a SIGINT from a scheduler raises mid-step
        return real(session)

    monkeypatch.setattr(trainer, "optimizer_step", step_or_die)


def test_resume_is_bit_identical(workspace, subject, make_config, monkeypatch):
    config = make_config("tiny", *RESUMABLE)
    full = run_train(subject, config, workspace=workspace, run_name="full")

    with monkeypatch.context() as patch:
        _kill_at(patch, 5)  # dies in step 6: the last checkpoint is step 4
        with pytest.raises(KeyboardInterrupt):
            run_train(subject, config, workspace=workspace, run_name="killed")
    killed_dir = workspace.lora_dir(subject, "killed")
    assert [p.name for p in list_checkpoints(killed_dir / "checkpoints")] == ["checkpoint-2", "checkpoint-4"]
    (killed_dir / "checkpoints" / ".staging-checkpoint-6").mkdir()  # a write cut short is never resumed from
    assert _statuses(subject)["killed"] == "KILLED"

    resumed = run_train(subject, workspace=workspace, resume=True)
    assert resumed.run_name == "killed" and resumed.steps == 8
    a, b = load_file(full.lora_file), load_file(resumed.lora_file)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # (Not the file bytes: safetensors writes its metadata map in a random order.)
    assert _metadata(full.lora_file) == _metadata(resumed.lora_file)
    assert mlflow.MlflowClient().get_run(resumed.run_id).data.tags["workbench.resumed_from_step"] == "4"

    with pytest.raises(WorkbenchError, match="Nothing to resume"):  # every run of the subject is finished
        run_train(subject, workspace=workspace, resume=True)


def test_nan_loss_stops_with_a_reason_and_a_failed_run(workspace, subject, make_config, monkeypatch):
    real = trainer.compute_loss

    def poisoned(session, micro_step):
        loss = real(session, micro_step)
        return loss * float("nan") if micro_step == 2 else loss

    monkeypatch.setattr(trainer, "compute_loss", poisoned)
    with pytest.raises(TrainingDivergedError, match="step 3: training diverged. Lower learning_rate"):
        run_train(subject, make_config("tiny", "max_train_steps=6"), workspace=workspace, run_name="nan")
    assert _statuses(subject) == {"nan": "FAILED"}
    assert not (workspace.lora_dir(subject, "nan") / "summary.json").exists()
