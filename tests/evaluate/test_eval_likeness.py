"""Likeness: the same person scores as the same identity, different people do not, missing faces count."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from workbench.evaluate import EvalConfig, run_eval
from workbench.evaluate.analyse import analyse
from workbench.evaluate.likeness import likeness, read_intake_embeddings
from workbench.faces import get_backend


def test_same_person_verified_different_person_not(
    astronaut, grace_hopper, workspace, subject_with_photos, blurred_resized
):
    backend = get_backend("dlib", upsample=0)
    refs = read_intake_embeddings(workspace, subject_with_photos, "dlib")
    assert refs is not None and refs.embeddings.shape == (2, 128)
    same = likeness(analyse(blurred_resized(astronaut)).embedding, refs, backend)
    other = likeness(analyse(grace_hopper).embedding, refs, backend)
    assert same["verified"] and same["median_distance"] < 0.5
    assert not other["verified"] and other["median_distance"] > 0.6
    assert likeness(None, refs, backend)["verified"] is False


def test_suite_over_a_folder_counts_missing_faces_and_reads_marks(
    astronaut, grace_hopper, workspace, subject_with_photos, tmp_path, blurred_resized
):
    from workbench.generate.provenance import save_png

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    # Only this image carries the mark, written by the generate stage's own writer.
    save_png(
        Image.fromarray(blurred_resized(astronaut)), outputs / "a_same.png", {"seed": 1, "prompt": "studio"}
    )
    Image.fromarray(astronaut[20:340, 60:380]).save(outputs / "b_same_crop.jpg", quality=60)
    Image.fromarray(grace_hopper).save(outputs / "c_other.png")
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(outputs / "d_blank.png")
    config = EvalConfig(metrics=["likeness", "skin", "detect", "provenance", "ranking"], n_boot=50)
    result = run_eval(subject_with_photos, config, workspace=workspace, images=outputs)
    t = result.table.set_index("file")
    assert len(t) == 4  # the blank image is kept, not dropped
    assert result.metrics["likeness.face_found_rate"] == 0.75
    assert result.metrics["likeness.verification_rate"] == 0.5
    verified = dict(zip(result.table["id"], result.table["verified"], strict=True))
    assert verified == {"output/a_same.png": 1.0, "output/b_same_crop.jpg": 1.0,
                        "output/c_other.png": 0.0, "output/d_blank.png": 0.0}  # fmt: skip
    assert result.metrics["provenance.ai_mark_rate"] == 0.25
    assert result.summary["likeness"]["references_from"] == {subject_with_photos: "intake"}  # not recomputed
    # 2 real vs 4 generated: below the minimum per side, a sentence and no detect.* number
    assert result.summary["detect"]["too_few"].startswith("too few images for a detectability estimate")
    assert "detect.auc" not in result.metrics
    assert list(result.table["id"])[-1] == "output/d_blank.png"  # ranking puts the faceless image last
    assert result.out_dir.is_relative_to(workspace.subject_dir(subject_with_photos))
    assert (result.out_dir / "report.html").is_file() and result.run_id


def test_a_generation_run_is_read_through_its_manifest(
    tmp_path, workspace, subject_with_photos, grace_hopper
):
    """Only recorded images count, each once: not the contact sheet, not a resumed index twice, no torn line."""
    run = tmp_path / "generate-run"
    run.mkdir()
    for name in ("000.png", "001.png", "contact_sheet.png"):
        Image.fromarray(grace_hopper).save(run / name)
    lines = [
        {"index": 0, "file": "000.png", "seed": 0, "presets": ["dark"]},
        {"index": 1, "file": "001.png", "seed": 1, "presets": ["office"]},
        {"index": 1, "file": "001.png", "seed": 1, "presets": ["office"]},  # re-recorded by a resume
    ]
    (run / "manifest.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + '\n{"index": 2, "fi')
    config = EvalConfig(metrics=["likeness"], n_boot=20)
    result = run_eval(subject_with_photos, config, workspace=workspace, images=run)
    assert sorted(result.table["id"]) == ["output/000.png", "output/001.png"]
    assert sorted(result.table["preset"]) == ["dark", "office"]
