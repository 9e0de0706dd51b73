"""A small synthetic intake dataset (real faces from packages) in the format the intake stage writes.

Built here on purpose, without the intake stage's code: 64 px square crops of Eileen Collins (skimage) and
Grace Hopper (matplotlib) with ``metadata.jsonl`` (file_name, text, face_box, landmarks, landmarks5 in crop
pixels), ``subject.json`` with the identifier token, and ``intake/embeddings.npz`` (dlib 128-d references, written by intake's own writer).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.intake.dataset import save_embeddings
from workbench.workspace import Workspace

SUBJECT = "eileen"
TOKEN = "ohwx"
SIZE = 64
FAST = [
    "validation_prompts=a photo of {instance}", "validation_inference_steps=2", "validation_guidance_scale=1.0",
    "checkpointing_steps=0", "rank=4",
]  # fmt: skip


def _crop(image: np.ndarray, box, landmarks, landmarks5, mirror: bool):
    x0, y0, x1, y1 = box
    side = int(max(x1 - x0, y1 - y0) * 1.8)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(cx - side / 2, 0, image.shape[1] - side))
    top = int(np.clip(cy - side / 2, 0, image.shape[0] - side))
    scale = SIZE / side
    crop = Image.fromarray(image[top : top + side, left : left + side]).resize((SIZE, SIZE), Image.LANCZOS)

    def move(points):
        points = (np.asarray(points, dtype=np.float32).reshape(-1, 2) - [left, top]) * scale
        if mirror:
            points[:, 0] = SIZE - points[:, 0]
        return points

    b = move([[x0, y0], [x1, y1]])
    box_out = [float(min(b[:, 0])), float(b[0, 1]), float(max(b[:, 0])), float(b[1, 1])]
    if mirror:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return crop, box_out, move(landmarks).tolist(), move(landmarks5).tolist()


@pytest.fixture(scope="session")
def intake_template(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """One subject folder, built once per session; tests copy it into their own workspace."""
    from workbench.faces import get_backend

    backend = get_backend("dlib")
    root = tmp_path_factory.mktemp("intake-template") / SUBJECT
    dataset = root / "dataset"
    dataset.mkdir(parents=True)
    lines, embeddings = [], []
    for name, image in (("astronaut", astronaut), ("hopper", grace_hopper)):
        face = backend.detect(image)[0]
        embeddings.append(backend.embed(image, face))
        for mirror in (False, True):
            crop, box, lm, lm5 = _crop(image, face.box, face.landmarks, face.landmarks5, mirror)
            file_name = f"{name}{'-m' if mirror else ''}.png"
            crop.save(dataset / file_name)
            lines.append({
                "file_name": file_name, "text": f"a photo of {TOKEN} woman", "face_box": box,
                "landmarks": lm, "landmarks5": lm5,
            })  # fmt: skip
    (dataset / "metadata.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    (root / "intake").mkdir()
    save_embeddings(root / "intake" / "embeddings.npz", embeddings, ["astronaut.png", "hopper.png"], backend)
    (root / "subject.json").write_text(
        json.dumps({"subject_id": SUBJECT, "token": TOKEN, "class_word": "woman"})
    )
    return root


@pytest.fixture
def subject(workspace: Workspace, intake_template: Path) -> str:
    """The synthetic subject, copied into this test's fresh workspace."""
    shutil.copytree(intake_template, workspace.subject_dir(SUBJECT))
    return SUBJECT


@pytest.fixture
def make_config():
    """``make_config("tiny", "max_train_steps=4")``: a fast TrainConfig on a tiny preset."""
    from workbench.train import TrainConfig

    def make(model: str = "tiny", *overrides: str) -> TrainConfig:
        return TrainConfig(model=model).with_overrides([*FAST, *overrides])

    return make
