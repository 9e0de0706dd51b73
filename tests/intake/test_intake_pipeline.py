"""End to end: photos on disk -> verdicts, the aligned HF dataset, reference embeddings and the MLflow run."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pytest
from skimage import data

from workbench.cli import main
from workbench.intake import IntakeConfig, load_embeddings, run_intake

CONFIG = IntakeConfig(retention_days=0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, grace_hopper, save_jpeg) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    save_jpeg(astronaut, folder / "a-astronaut.jpg", date="2025:03:01 10:00:00")
    save_jpeg(grace_hopper, folder / "b-grace.jpg", date="2019:06:01 12:00:00")
    smaller = cv2.resize(astronaut, (440, 440), interpolation=cv2.INTER_AREA)
    save_jpeg(smaller, folder / "c-astronaut-again.jpg", quality=70)
    save_jpeg(data.coffee(), folder / "d-coffee.jpg")
    return folder


def test_intake_end_to_end(photos, workspace):
    # Two people on purpose, to see two faces through the pipeline: the one-person check only warns here
    # (tests/intake/test_intake_one_person.py covers its rejections).
    config = CONFIG.replace(warn_only=["tilt", "same_person"])
    result = run_intake("ada", config, workspace=workspace, photos=[photos])
    verdicts = {p.name: p for p in result.photos}
    assert [n for n, p in verdicts.items() if p.accepted] == ["a-astronaut.jpg", "b-grace.jpg"]
    assert "looks like a different person than the other 1 photos" in verdicts["b-grace.jpg"].warnings[0]
    assert "near-duplicate of a-astronaut.jpg" in verdicts["c-astronaut-again.jpg"].reasons[0]
    assert "No face" in verdicts["d-coffee.jpg"].reasons[0]
    findings = {f.name: f for f in result.set_findings}
    assert not findings["photo_count"].ok
    assert not findings["capture_dates"].ok and "5.7 years" in findings["capture_dates"].message

    # Originals kept byte-identical.
    for source in photos.iterdir():
        kept = workspace.originals_dir("ada") / source.name
        assert (
            hashlib.sha256(kept.read_bytes()).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
        )

    # The aligned set loads with stock `datasets`, captions carry the token, geometry is in crop pixels.
    import datasets

    train = datasets.load_dataset("imagefolder", data_dir=str(result.dataset_dir), split="train")
    assert len(train) == 2 and train[0]["image"].size == (512, 512)
    for row in train:
        assert "ohwx person" in row["text"] and row["subject_id"] == "ada"
        (lx, ly), (rx, ry) = row["eyes"]
        assert abs(ly - ry) < 1.0 and 0.3 * 512 < lx < rx < 0.7 * 512  # level and centred
        x0, y0, x1, y1 = row["face_box"]
        landmarks = np.array(row["landmarks"])
        assert landmarks.shape == (68, 2) and 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
        inside = (landmarks[:, 0] >= x0 - 20) & (landmarks[:, 0] <= x1 + 20) & (landmarks[:, 1] >= y0 - 20)
        assert inside.mean() > 0.9
        assert row["pose"] == "front" and row["source"].startswith("originals/")

    # Reference embeddings: one per crop, the two people apart.
    refs = load_embeddings(workspace.intake_dir("ada") / "embeddings.npz")
    assert refs["embeddings"].shape == (2, 128) and refs["backend"] == "dlib" and refs["metric"] == "l2"
    assert np.linalg.norm(refs["embeddings"][0] - refs["embeddings"][1]) > refs["threshold"]

    # The MLflow run: tagged with the subject, config as params, counts as metrics, no pixels by default.
    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["workbench.subject_id"] == "ada"
    assert run.data.params["face_backend"] == "dlib" and run.data.params["resolution"] == "512"
    metrics = run.data.metrics
    assert (metrics["n_photos"], metrics["n_accepted"]) == (4, 2)
    assert (metrics["failed.duplicate"], metrics["failed.no_face"], metrics["failed.blur"]) == (1, 1, 0)
    artifacts = _artifact_files(result.run_id)
    assert "intake/report.json" in artifacts and "config/intake.yaml" in artifacts
    assert not [a for a in artifacts if a.endswith((".jpg", ".png"))]
    subject = workspace.read_subject("ada")
    assert subject["token"] == "ohwx" and subject["intake"]["run_id"] == result.run_id


def _artifact_files(run_id: str, path: str = "") -> list[str]:
    files = []
    for item in mlflow.MlflowClient().list_artifacts(run_id, path):
        files.extend(_artifact_files(run_id, item.path) if item.is_dir else [item.path])
    return files


def test_cli_json_and_exit_status(photos, workspace, tmp_path, capsys):
    status = main(
        [
            "intake",
            "--subject",
            "cli-subject",
            str(photos / "b-grace.jpg"),
            str(photos / "d-coffee.jpg"),
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [(Path(p["path"]).name, p["accepted"]) for p in out["photos"]] == [
        ("b-grace.jpg", True),
        ("d-coffee.jpg", False),
    ]
    assert all(isinstance(p["reasons"], list) for p in out["photos"]) and out["set_findings"]

    junk = tmp_path / "junk"
    junk.mkdir()
    shutil.copy(photos / "d-coffee.jpg", junk)
    (junk / "readme.jpg").write_text("not a photo")
    status = main(["intake", "--subject", "cli-subject", str(junk)])
    captured = capsys.readouterr()
    assert status != 0 and "none of the 2 files was accepted" in captured.err
    assert "No face was found" in captured.out and "not an image" in captured.out
