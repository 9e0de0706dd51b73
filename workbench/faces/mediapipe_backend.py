"""mediapipe face mesh (478 points) mapped to the iBUG 68-point order; embeddings come from dlib.

Only mediapipe 0.10.21 and older ship the legacy face-mesh model inside the wheel (it needs numpy<2 and
protobuf<5: install the ``mediapipe`` extra in its own environment). The mesh is denser and steadier than
dlib's 68 points on turned heads; mediapipe has no identity embedding, so :meth:`embed` uses dlib's ResNet.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np

from workbench.errors import MissingDependencyError
from workbench.faces.base import Face, as_rgb_uint8

# Face-mesh vertex for each iBUG 68 point (jaw, brows, nose, eyes, outer and inner lips), image-left first.
MESH_TO_IBUG68 = np.array([
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows 17-26
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose 27-35
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes 36-47
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips 48-59
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips 60-67
])  # fmt: skip


class MediapipeBackend:
    name = "mediapipe"
    metric: Literal["l2", "cosine"] = "l2"
    threshold = 0.6  # the embedding is dlib's

    def __init__(self, max_faces: int = 5, min_confidence: float = 0.5):
        if importlib.util.find_spec("mediapipe") is None:
            raise MissingDependencyError(
                "The mediapipe face backend needs `pip install 'headshot-workbench[mediapipe]'` "
                "(mediapipe==0.10.21, numpy<2, protobuf<5; best in its own environment)."
            )
        import mediapipe as mp

        if not hasattr(mp, "solutions"):
            raise MissingDependencyError(
                f"mediapipe {getattr(mp, '__version__', '?')} has no bundled face mesh: install mediapipe==0.10.21."
            )
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_confidence,
        )  # fmt: skip

    def detect(self, image: np.ndarray) -> list[Face]:
        image = as_rgb_uint8(image)
        h, w = image.shape[:2]
        result = self._mesh.process(image)
        faces = []
        for mesh in result.multi_face_landmarks or []:
            points = np.array([[p.x * w, p.y * h] for p in mesh.landmark], dtype=np.float32)
            landmarks = points[MESH_TO_IBUG68]
            x0, y0 = landmarks[:27].min(0)
            x1, y1 = landmarks[:27].max(0)
            # dlib's 5-point order: one eye's two corners, the other eye's two corners, then the nose base.
            five = landmarks[[45, 42, 36, 39, 33]]
            faces.append(Face((float(x0), float(y0), float(x1), float(y1)), 1.0, landmarks, five,
                              extra={"mesh": points}))  # fmt: skip
        return sorted(faces, key=lambda f: f.width * f.height, reverse=True)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        from workbench.faces.dlib_backend import DlibBackend

        return DlibBackend().embed(image, Face(face.box, face.score, face.landmarks, None))
