"""Reading the intake dataset: crops, geometry, prompts, face masks."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.train import data as D


def test_reads_the_intake_format(workspace, subject):
    examples = D.read_dataset(workspace.dataset_dir(subject), 32)
    assert len(examples) == 4
    assert examples[0].image.shape == (32, 32, 3)
    x0, y0, x1, y1 = examples[0].face_box
    assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32  # scaled from 64 px crops to 32 px


def test_identity_from_subject_json_then_captions(workspace, subject):
    examples = D.read_dataset(workspace.dataset_dir(subject), 64)
    assert D.subject_identity(workspace.read_subject(subject), examples, None, None) == ("ohwx", "woman")
    # Without subject.json fields, the one rare word every caption shares is the token.
    assert D.subject_identity({}, examples, None, "woman") == ("ohwx", "woman")
    for e in examples:
        e.caption = "a photo"
    with pytest.raises(WorkbenchError, match="instance_token"):
        D.subject_identity({}, examples, None, None)


def test_prompts_keep_the_token(workspace, subject):
    examples = D.read_dataset(workspace.dataset_dir(subject), 64)
    assert D.instance_prompts(examples, None, "ohwx", "woman")[0] == "a photo of ohwx woman"
    assert (
        D.instance_prompts(examples, "{token} {class_word}, headshot", "ohwx", "woman")[0]
        == "ohwx woman, headshot"
    )


def test_face_mask_weights_the_face(workspace, subject):
    example = D.read_dataset(workspace.dataset_dir(subject), 64)[0]
    mask = D.face_mask(example, 64)
    x0, y0, x1, y1 = (int(v) for v in example.face_box)
    inside = mask[y0:y1, x0:x1].mean()
    assert inside > 0.8 and mask[:4, :4].max() < 0.05 and mask[-4:, -4:].max() < 0.05
    weights = D.loss_weights([example], 8, face_weight=3.0)
    assert weights.shape == (1, 1, 8, 8) and weights.mean().item() == pytest.approx(1.0, abs=1e-5)
    assert weights.max() > 1.5 * weights.min()
    assert D.loss_weights([example], 8, face_weight=1.0) is None


def test_missing_dataset_says_run_intake(workspace):
    with pytest.raises(WorkbenchError, match="workbench intake"):
        D.read_dataset(workspace.dataset_dir("nobody"), 64)


def test_class_images_are_generated_once(tmp_path):
    from PIL import Image

    calls = []

    def generate(i):
        calls.append(i)
        return Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8))

    first = D.ensure_class_images(tmp_path, "m", "a photo of a woman", 3, 16, generate)
    second = D.ensure_class_images(tmp_path, "m", "a photo of a woman", 3, 16, generate)
    assert calls == [0, 1, 2] and len(first) == len(second) == 3
    D.ensure_class_images(tmp_path, "m", "a photo of a man", 3, 16, generate)  # another prompt, another key
    assert len(calls) == 6


def test_reference_embeddings_are_read_as_intake_writes_them(tmp_path):
    from workbench.faces import get_backend
    from workbench.intake.dataset import save_embeddings
    from workbench.train.validation import load_references

    refs = np.random.default_rng(0).normal(size=(3, 128)).astype(np.float32)
    assert load_references(tmp_path) is None
    save_embeddings(tmp_path / "embeddings.npz", list(refs), ["a.png", "b.png", "c.png"], get_backend("dlib"))
    loaded = load_references(tmp_path)
    assert np.array_equal(loaded["embeddings"], refs) and loaded["backend"] == "dlib"


def test_likeness_scores_real_faces_and_counts_none_on_noise(astronaut, grace_hopper):
    from PIL import Image

    from workbench.faces import get_backend
    from workbench.train.validation import likeness

    backend = get_backend("dlib")
    face = backend.detect(astronaut)[0]
    refs = {"embeddings": np.stack([backend.embed(astronaut, face)]), "backend": "dlib"}
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert likeness([noise], refs, "dlib") == {"faces_found": 0.0}
    same = likeness([Image.fromarray(astronaut)], refs, "dlib")
    other = likeness([Image.fromarray(grace_hopper)], refs, "dlib")
    assert same["faces_found"] == other["faces_found"] == 1.0
    assert same["face_distance"] < 0.3 < 0.6 < other["face_distance"] and same["same_person_rate"] == 1.0
