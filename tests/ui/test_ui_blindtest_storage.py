"""Blind-test items hide the answer; answers are stored as JSONL and scored by the evaluation suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from workbench.errors import WorkbenchError
from workbench.evaluate.human import read_answers, score_answers
from workbench.ui import blindtest as bt
from workbench.workspace import Workspace
from workbench.workspace.generations import ImageRecord, generation_run


@pytest.fixture
def subject(workspace: Workspace, astronaut: np.ndarray) -> str:
    sid = "blind"
    workspace.write_subject(sid, token="ohwx")
    originals = workspace.originals_dir(sid)
    originals.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.roll(astronaut, 20 * i, axis=1)).save(originals / f"IMG_{i}.jpg")
    # An upload intake rejected (it may show someone else): kept as uploaded, never a "real" blind-test item.
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(originals / "IMG_rejected.jpg")
    dataset = workspace.dataset_dir(sid)
    dataset.mkdir(parents=True)
    rows = [{"file_name": f"{i:03d}.png", "source": f"originals/IMG_{i}.jpg"} for i in range(3)]
    (dataset / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    run = generation_run(workspace, sid, "generate-1")
    run.dir.mkdir(parents=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", '{"seed": 1, "prompt": "ohwx person"}')
    rng = np.random.default_rng(0)
    for i in range(3):
        noise = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(run.dir / f"{i:04d}-seed{i}.png", pnginfo=info)
        run.append(ImageRecord(index=i, seed=i, file=f"{i:04d}-seed{i}.png"))
    Image.new("RGB", (200, 100)).save(run.contact_sheet)  # not an output: never a blind-test item
    Image.new("RGB", (64, 64)).save(run.dir / "stray.png")  # not in the manifest: not an output either
    return sid


def test_real_items_are_the_photos_intake_accepted(workspace, subject) -> None:
    assert [p.name for p in bt.real_photos(workspace, subject)] == ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"]


def test_generated_items_are_the_images_the_manifest_records(workspace, subject) -> None:
    names = [p.name for p in bt.generated_images(workspace, subject)]
    assert names == ["0000-seed0.png", "0001-seed1.png", "0002-seed2.png"]  # no contact sheet, no stray file


@pytest.mark.parametrize("mode", ["single", "2afc"])
def test_items_mix_real_and_generated_and_hide_the_answer(workspace, subject, mode) -> None:
    items = bt.build_items(workspace, subject, mode, 8, seed=0)
    assert len(items) == 8
    truths = [i.truth for i in items]
    expected = {"real", "ai"} if mode == "single" else {"left", "right"}
    assert set(truths) == expected and truths.count(truths[0]) == 4  # balanced
    for item in items:
        assert len(item.images) == (1 if mode == "single" else 2)
        for path in item.images:
            with Image.open(path) as image:
                assert image.size == (bt.DISPLAY_SIZE, bt.DISPLAY_SIZE)  # resolution is not the tell
                assert not image.text  # the generation parameters are gone
            assert "IMG_" not in path and "contact" not in path  # neither is the file name


def test_answers_are_jsonl_the_evaluation_suite_scores(workspace, subject) -> None:
    single = bt.build_items(workspace, subject, "single", 4, seed=1)
    for item in single:  # a perfect observer
        bt.record_answer(workspace, subject, "P1", item, item.truth)
    pair = bt.build_items(workspace, subject, "2afc", 2, seed=2)
    bt.record_answer(workspace, subject, "P2", pair[0], pair[0].truth)
    wrong = "left" if pair[1].truth == "right" else "right"
    bt.record_answer(workspace, subject, "P2", pair[1], wrong)

    path = bt.answers_path(workspace, subject)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(rows[0]) == {"participant", "item", "truth", "answer", "mode", "timestamp"}
    assert path.is_relative_to(workspace.subject_dir(subject))  # `forget` erases it with the subject

    scores = score_answers(read_answers(path))
    assert scores["n_participants"] == 2
    accuracy = scores["single"]["accuracy"]
    assert accuracy.est == 1.0 and accuracy.lo < 1.0  # Wilson CI
    assert scores["2afc"]["accuracy"].est == 0.5


def test_clear_errors(workspace, subject) -> None:
    with pytest.raises(WorkbenchError, match="participant"):
        bt.record_answer(workspace, subject, " ", bt.build_items(workspace, subject, "single", 1)[0], "ai")
    with pytest.raises(WorkbenchError, match="'left' or 'right'"):
        bt.record_answer(workspace, subject, "P", bt.build_items(workspace, subject, "2afc", 1)[0], "ai")
    workspace.write_subject("nogen", token="ohwx")
    workspace.originals_dir("nogen").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(workspace.originals_dir("nogen") / "a.jpg")
    workspace.dataset_dir("nogen").mkdir(parents=True)
    (workspace.dataset_dir("nogen") / "metadata.jsonl").write_text(
        json.dumps({"source": "originals/a.jpg"}) + "\n"
    )
    with pytest.raises(WorkbenchError, match="no generated images yet"):
        bt.build_items(workspace, "nogen", "single", 2)
