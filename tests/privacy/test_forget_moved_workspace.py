"""A moved or copied workspace keeps working and forgets completely: records hold paths relative to its root.

MLflow's embedded store can only hold absolute artifact locations; before, a moved workspace wrote new
artifacts back to its old place and `forget` erased the old place's files (or none) instead of its own.
"""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest
from erasure import leaks, mentions, personal_files, run_stages, tracking_traces

from workbench.demo import sample_photo_set
from workbench.generate import GenerateConfig, run_generate
from workbench.workspace import Workspace
from workbench.workspace.lifecycle import forget_subject
from workbench.workspace.loras import lora_runs

pytestmark = pytest.mark.abuse
SUBJECT = "moved-m2t"


@pytest.fixture
def trained_workspace(tmp_path, monkeypatch) -> Workspace:
    """A workspace with the embedded store (the default) after a whole run of the subject."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    workspace = Workspace.resolve(tmp_path / "before")
    run_stages(SUBJECT, workspace, photos=sample_photo_set(tmp_path / "camera")[:3])
    shutil.rmtree(tmp_path / "camera")  # the person's own photos: not the workbench's to erase
    return workspace


def _generate_again(workspace: Workspace) -> None:
    lora = lora_runs(workspace, SUBJECT)[0].weights
    config = GenerateConfig(model="tiny", lora=str(lora), presets=["corporate"], count=1, steps=2)
    run_generate(SUBJECT, config, workspace=workspace)


def test_a_moved_workspace_writes_and_forgets_in_its_new_place(trained_workspace, tmp_path, record_property):
    record_property("reliability.faults", 1)  # the workspace folder moved under the store's feet
    old = trained_workspace
    report = json.loads((old.intake_dir(SUBJECT) / "report.json").read_text())
    assert report["dataset_dir"] == f"subjects/{SUBJECT}/dataset"  # relative to the root
    moved = Workspace.resolve(tmp_path / "after")
    shutil.move(old.root, moved.root)

    _generate_again(moved)
    needles = [p.read_bytes() for p in personal_files(moved, SUBJECT)]
    assert not old.root.exists()  # nothing was written to the old place
    forget_subject(SUBJECT, moved)

    left = leaks([tmp_path], needles) + mentions([tmp_path], SUBJECT)
    record_property("reliability.leaks", len(left))
    assert not old.root.exists()
    assert left == []
    assert tracking_traces(mlflow.MlflowClient(f"sqlite:///{moved.mlflow_dir / 'mlflow.db'}"), SUBJECT) == []


def test_forgetting_in_a_copy_erases_the_copy_and_leaves_the_original(
    trained_workspace, tmp_path, record_property
):
    record_property("reliability.faults", 1)  # the workspace folder copied
    original = trained_workspace
    copy = Workspace.resolve(tmp_path / "copy")
    shutil.copytree(original.root, copy.root)
    original_files = sorted(p.relative_to(original.root) for p in original.root.rglob("*") if p.is_file())

    _generate_again(copy)
    needles = [p.read_bytes() for p in personal_files(copy, SUBJECT)]
    forget_subject(SUBJECT, copy)

    left = leaks([copy.root], needles) + mentions([copy.root], SUBJECT)
    record_property("reliability.leaks", len(left))
    assert left == []
    # The original workspace is untouched: another copy is another workspace, forgotten on its own.
    assert (
        sorted(p.relative_to(original.root) for p in original.root.rglob("*") if p.is_file())
        == original_files
    )
    assert leaks([original.root], needles)
