"""One interface over every face-analysis backend (dlib offline by default; mediapipe, insightface optional).

Images are RGB ``uint8`` arrays of shape (H, W, 3). Landmark arrays use the iBUG 68-point order when a
backend has them, so skin masks, expression and pose checks work the same whatever found the face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float  # detector confidence (backend-specific scale)
    landmarks: np.ndarray | None = None  # (68, 2) iBUG order, or None
    landmarks5: np.ndarray | None = None  # (5, 2): eye corners and nose base (dlib order)
    extra: dict = field(default_factory=dict)  # backend-specific (e.g. a dlib shape for embedding)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        return float(min(self.width, self.height))

    def eye_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """(left-of-image eye, right-of-image eye) centres from whichever landmarks exist."""
        if self.landmarks is not None:
            return self.landmarks[36:42].mean(0), self.landmarks[42:48].mean(0)
        if self.landmarks5 is not None:
            # dlib 5-point order: right eye outer, right eye inner, left eye outer, left eye inner, nose.
            a, b = self.landmarks5[2:4].mean(0), self.landmarks5[0:2].mean(0)
            return (a, b) if a[0] < b[0] else (b, a)
        raise ValueError("this face has no landmarks")


@runtime_checkable
class FaceBackend(Protocol):
    name: str
    #: How embeddings compare: ``l2`` distance (smaller = same) or ``cosine`` similarity (larger = same).
    metric: Literal["l2", "cosine"]
    #: The backend's published same-person threshold on that metric (dlib: L2 < 0.6).
    threshold: float

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray: ...


def as_landmarks68(landmarks: np.ndarray, purpose: str) -> np.ndarray:
    """``landmarks`` as a finite (68, 2) float array, or a clear error naming what needed them."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        from workbench.errors import WorkbenchError

        raise WorkbenchError(
            f"{purpose} needs 68 iBUG landmarks as a (68, 2) array, got shape {lm.shape}: "
            "detect the face with the dlib backend (68-point model)."
        )
    return lm


def eye_aspect(eye: np.ndarray) -> float:
    """Soukupova & Cech's (2016) eye aspect ratio of one eye's six landmarks p1..p6: lid opening over eye width
    (~0.3 open, < 0.15 closed or squinting)."""
    p = np.asarray(eye, dtype=np.float64)
    vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
    return float(vertical / (2.0 * max(float(np.linalg.norm(p[0] - p[3])), 1e-6)))


def mean_eye_aspect(landmarks68: np.ndarray) -> float:
    """The eye aspect ratio averaged over both eyes of iBUG-68 landmarks."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return (eye_aspect(lm[36:42]) + eye_aspect(lm[42:48])) / 2.0


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[-1] == 4:
        image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(image * (255 if image.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def same_person(distance_or_similarity: float, backend: FaceBackend) -> bool:
    if backend.metric == "l2":
        return distance_or_similarity < backend.threshold
    return distance_or_similarity > backend.threshold


def compare(a: np.ndarray, b: np.ndarray, metric: Literal["l2", "cosine"]) -> float:
    if metric == "l2":
        return float(np.linalg.norm(a - b))
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
