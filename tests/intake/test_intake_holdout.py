"""Held-out photos: accepted like the others, kept out of training, found by the evaluation, erased by forget."""

from __future__ import annotations

import hashlib

import pytest

from workbench.demo import sample_photo_set
from workbench.errors import WorkbenchError
from workbench.intake import IntakeConfig, run_intake
from workbench.intake.dataset import accepted_originals, read_references


@pytest.fixture(scope="module")
def demo_photos(tmp_path_factory):
    return sample_photo_set(tmp_path_factory.mktemp("demo-photos"))


def test_holdout_keeps_the_last_accepted_photos_out_of_training(demo_photos, workspace):
    result = run_intake(
        "h", IntakeConfig(retention_days=0, holdout=1), workspace=workspace, photos=demo_photos
    )
    held = [p for p in result.photos if p.details.get("holdout")]
    assert [p.name for p in held] == [demo_photos[-1].name] and held[0].accepted and held[0].crop is None
    stored = workspace.holdout_dir("h") / demo_photos[-1].name
    assert stored.read_bytes() == demo_photos[-1].read_bytes()  # byte-identical, like originals/
    trained_on = [p.name for p in accepted_originals(workspace, "h")]
    assert demo_photos[-1].name not in trained_on and len(trained_on) == len(demo_photos) - 1
    refs = read_references(workspace.intake_dir("h"))
    assert len(refs["embeddings"]) == len(trained_on)  # likeness references: training photos only

    # A later intake rebuilds the held-out set like the dataset.
    run_intake("h", IntakeConfig(holdout=0), workspace=workspace, photos=demo_photos)
    assert not workspace.holdout_dir("h").exists() or not any(workspace.holdout_dir("h").iterdir())


def test_holdout_of_every_photo_is_refused_with_advice(demo_photos, workspace):
    with pytest.raises(WorkbenchError, match="would keep all 2 accepted photos out of training"):
        run_intake(
            "h2", IntakeConfig(retention_days=0, holdout=2), workspace=workspace, photos=demo_photos[:2]
        )


def test_forget_erases_the_holdout(demo_photos, workspace):
    from workbench.workspace.lifecycle import forget_subject

    run_intake("h3", IntakeConfig(retention_days=0, holdout=1), workspace=workspace, photos=demo_photos)
    digest = hashlib.sha256(demo_photos[-1].read_bytes()).digest()
    forget_subject("h3", workspace)
    leftovers = [
        p
        for p in workspace.root.rglob("*")
        if p.is_file() and digest in {hashlib.sha256(p.read_bytes()).digest()}
    ]
    assert not leftovers
