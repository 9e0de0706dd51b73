"""Fixtures of the evaluation tests: bundled faces analysed once per session, a subject with intake embeddings."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.faces import get_backend
from workbench.intake.dataset import save_embeddings


@pytest.fixture(scope="session")
def dlib_faces(astronaut: np.ndarray, grace_hopper: np.ndarray) -> dict[str, object]:
    """The largest face (box, 68 landmarks, embedding) of each bundled portrait, detected once."""
    backend = get_backend("dlib", upsample=0)
    out = {}
    for name, image in (("astronaut", astronaut), ("grace_hopper", grace_hopper)):
        face = backend.detect(image)[0]
        out[name] = (face, backend.embed(image, face))
    return out


@pytest.fixture
def subject_with_photos(workspace, astronaut: np.ndarray, dlib_faces) -> str:
    """Subject 'eileen': the astronaut photo as original, and its reference embeddings written by intake."""
    subject = "eileen"
    workspace.write_subject(subject)
    originals = workspace.originals_dir(subject)
    originals.mkdir(parents=True)
    Image.fromarray(astronaut).save(originals / "astronaut.png")
    flipped = np.ascontiguousarray(astronaut[:, ::-1])
    Image.fromarray(flipped).save(originals / "astronaut_flipped.png")
    backend = get_backend("dlib", upsample=0)
    face = backend.detect(flipped)[0]
    embeddings = np.stack([dlib_faces["astronaut"][1], backend.embed(flipped, face)])
    # What intake records of the photos it accepted (the references of the likeness and blind tests).
    dataset = workspace.dataset_dir(subject)
    dataset.mkdir(parents=True)
    rows = [{"file_name": f"{i:03d}.png", "source": f"originals/{name}"}
            for i, name in enumerate(["astronaut.png", "astronaut_flipped.png"])]  # fmt: skip
    (dataset / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    save_embeddings(
        workspace.intake_dir(subject) / "embeddings.npz", list(embeddings), ["astronaut.png", "astronaut_flipped.png"],
        backend,
    )  # fmt: skip
    return subject


@pytest.fixture(scope="session")
def blurred_resized():
    """A degraded copy of a photo: Gaussian blur then resize (same person, different pixels)."""

    def degrade(image: np.ndarray, size: int = 400) -> np.ndarray:
        return cv2.resize(cv2.GaussianBlur(image, (0, 0), 1.5), (size, size), interpolation=cv2.INTER_AREA)

    return degrade
