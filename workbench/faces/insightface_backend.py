"""insightface (RetinaFace detector + ArcFace embedding, buffalo_l by default) when its model pack is here.

The model packs are downloaded from GitHub at first use and carry a research-only licence, so this backend
never downloads: it loads a pack already under ``~/.insightface/models/<pack>`` (or ``root``) and otherwise
says where to put one. Landmarks come from the pack's 68-point 3D model (iBUG order) when it has one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np

from workbench.errors import MissingDependencyError, ModelNotAvailableError
from workbench.faces.arcface_backend import THRESHOLD as ARCFACE_THRESHOLD
from workbench.faces.base import Face, as_rgb_uint8


class InsightFaceBackend:
    name = "insightface"
    metric: Literal["l2", "cosine"] = "cosine"
    threshold = ARCFACE_THRESHOLD  # the same ArcFace cut-off as the arcface backend, with its source there

    def __init__(self, pack: str = "buffalo_l", root: str | None = None, det_size: int = 640):
        missing = [m for m in ("insightface", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingDependencyError(
                f"The insightface backend needs {' and '.join(missing)}: `pip install 'headshot-workbench[insightface]'`."
            )
        root_dir = Path(root).expanduser() if root else Path.home() / ".insightface"
        if not any((root_dir / "models" / pack).glob("*.onnx")):
            raise ModelNotAvailableError(
                f"The insightface model pack '{pack}' is not in {root_dir / 'models' / pack}: copy it there "
                "(it is not downloaded automatically; note its research-only licence), or use face_backend=dlib."
            )
        from insightface.app import FaceAnalysis

        self._app = FaceAnalysis(
            name=pack, root=str(root_dir), providers=["CPUExecutionProvider"],
            allowed_modules=["detection", "recognition", "landmark_3d_68"],
        )  # fmt: skip
        self._app.prepare(ctx_id=-1, det_size=(det_size, det_size))

    def detect(self, image: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(as_rgb_uint8(image)[..., ::-1])
        faces = []
        for found in self._app.get(bgr):
            kps = np.asarray(found.kps, dtype=np.float32)  # eye, eye, nose, mouth corner, mouth corner
            lm68 = getattr(found, "landmark_3d_68", None)
            landmarks = None if lm68 is None else np.asarray(lm68, dtype=np.float32)[:, :2]
            # In dlib's 5-point order the eye centre is the mean of each pair, so repeat each eye centre.
            five = kps[[1, 1, 0, 0, 2]]
            box = tuple(float(v) for v in found.bbox)
            faces.append(Face(box, float(found.det_score), landmarks, five, extra={"insightface": found}))  # type: ignore[arg-type]
        return sorted(faces, key=lambda f: f.width * f.height, reverse=True)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        found = face.extra.get("insightface")
        if found is None or getattr(found, "embedding", None) is None:
            from insightface.app.common import Face as InsightFace

            bgr = np.ascontiguousarray(as_rgb_uint8(image)[..., ::-1])
            kps = face.landmarks5[[2, 0, 4]] if face.landmarks5 is not None else None
            if kps is None or face.landmarks is None:
                raise ModelNotAvailableError(
                    "insightface needs the face's eye, nose and mouth points to embed it."
                )
            mouth = face.landmarks[[48, 54]]
            found = InsightFace(bbox=np.array(face.box), kps=np.vstack([kps, mouth]))
            self._app.models["recognition"].get(bgr, found)
        embedding = np.asarray(found.embedding, dtype=np.float32)
        return embedding / (np.linalg.norm(embedding) + 1e-12)
