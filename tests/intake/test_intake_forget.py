"""Erasure: `forget` leaves no file of the subject in the workspace and no run, row or artifact in MLflow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import ViewType

from workbench.cli import main
from workbench.intake import IntakeConfig, run_intake
from workbench.workspace.lifecycle import expire_subjects, forget_subject

GONE = "erase-me-q7x"  # unusual enough that finding these bytes anywhere means something was left behind
KEPT = "keep-me"


@pytest.fixture
def two_subjects(tmp_path, astronaut, grace_hopper, workspace, save_jpeg):
    save_jpeg(astronaut, tmp_path / "a.jpg")
    save_jpeg(grace_hopper, tmp_path / "g.jpg")
    # The subject to erase opts in to raw photos and crops in MLflow, the worst case for erasure.
    gone = run_intake(
        GONE, IntakeConfig(log_originals=True), workspace=workspace, photos=[tmp_path / "a.jpg"]
    )
    kept = run_intake(KEPT, IntakeConfig(retention_days=0), workspace=workspace, photos=[tmp_path / "g.jpg"])
    # What training adds: a registered model named after and tagged with the subject, versioned from its run.
    client = mlflow.MlflowClient()
    client.create_registered_model(f"lora-{GONE}", tags={"workbench.subject_id": GONE})
    client.create_model_version(f"lora-{GONE}", source=f"runs:/{gone.run_id}/dataset", run_id=gone.run_id)
    return gone, kept


def _files_mentioning(root: Path, needle: bytes) -> list[Path]:
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    return [p for p in files if needle in p.read_bytes()]


def _runs_of(subject: str) -> list:
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(
        experiments, f"tags.`workbench.subject_id` = '{subject}'", run_view_type=ViewType.ALL
    )


def test_forget_erases_files_runs_and_artifacts(two_subjects, workspace, tmp_path):
    gone, kept = two_subjects
    artifact_dir = Path(mlflow.MlflowClient().get_run(gone.run_id).info.artifact_uri.removeprefix("file://"))
    assert list(artifact_dir.rglob("*.png")) and list(artifact_dir.rglob("*.jpg"))  # opt-in did log pixels
    assert _files_mentioning(tmp_path / "mlflow.db", GONE.encode())

    report = forget_subject(GONE, workspace)

    assert report["found"] and report["runs_deleted"] == [gone.run_id] and report["files_removed"] >= 5
    assert report["models_deleted"] == [f"registered-model:lora-{GONE}"]
    assert report["artifact_files_removed"] >= 5 and report["remaining"] == {
        "files": 0,
        "runs": 0,
        "models": 0,
    }
    assert not workspace.subject_dir(GONE).exists() and not artifact_dir.exists()
    assert _runs_of(GONE) == []
    with pytest.raises(mlflow.exceptions.MlflowException):
        mlflow.MlflowClient().get_run(gone.run_id)  # purged, not just marked deleted
    # Not a byte of it anywhere under the test's folder: workspace, SQLite store (vacuumed), artifacts.
    assert _files_mentioning(tmp_path, GONE.encode()) == []
    assert _files_mentioning(tmp_path, gone.run_id.encode()) == []
    # The other subject is untouched.
    assert workspace.read_subject(KEPT) and len(_runs_of(KEPT)) == 1
    assert (workspace.dataset_dir(KEPT) / "metadata.jsonl").exists()

    again = forget_subject(GONE, workspace)  # erasing twice is harmless
    assert not again["found"] and again["runs_deleted"] == []


def test_retention_expires_subjects(two_subjects, workspace, capsys):
    subject = workspace.read_subject(GONE)
    assert subject["retention_days"] == 30 and workspace.read_subject(KEPT)["expires_at"] is None
    created = datetime.fromisoformat(subject["created_at"])
    assert expire_subjects(workspace, now=created + timedelta(days=29)) == []
    reports = expire_subjects(workspace, now=created + timedelta(days=31))
    assert [r["subject_id"] for r in reports] == [GONE]
    assert workspace.subjects() == [KEPT] and _runs_of(GONE) == []

    # The CLI: `forget --expired` with nothing expired, then `forget ID --json`.
    assert main(["forget", "--expired", "--workspace", str(workspace.root)]) == 0
    assert "No subject has expired" in capsys.readouterr().out
    assert main(["forget", KEPT, "--json", "--workspace", str(workspace.root)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["subject_id"] == KEPT and report["remaining"] == {"files": 0, "runs": 0, "models": 0}
    assert workspace.subjects() == []


def test_intake_enforces_retention(two_subjects, workspace, tmp_path):
    later = datetime.now(timezone.utc) + timedelta(days=45)
    result = run_intake(KEPT, IntakeConfig(retention_days=0), workspace=workspace, photos=[tmp_path / "g.jpg"],
                        now=later)  # fmt: skip
    assert [r["subject_id"] for r in result.expired] == [GONE]
    assert not workspace.subject_dir(GONE).exists()


def test_a_later_intake_keeps_the_subjects_retention_unless_it_sets_one(two_subjects, workspace, tmp_path):
    photos = [tmp_path / "g.jpg"]
    run_intake("short-lived", IntakeConfig(retention_days=7), workspace=workspace, photos=photos)
    run_intake("short-lived", IntakeConfig(), workspace=workspace, photos=photos)  # used to reset it to 30
    assert workspace.read_subject("short-lived")["retention_days"] == 7
    run_intake("short-lived", IntakeConfig(retention_days=3), workspace=workspace, photos=photos)
    record = workspace.read_subject("short-lived")
    created = datetime.fromisoformat(record["created_at"])
    assert record["retention_days"] == 3
    assert datetime.fromisoformat(record["expires_at"]) == created + timedelta(days=3)
    assert workspace.read_subject(KEPT)["retention_days"] is None  # 0 = kept until forgotten
