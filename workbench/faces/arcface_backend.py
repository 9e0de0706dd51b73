"""ArcFace likeness: dlib finds the face, an ArcFace ONNX file embeds it (512-d, cosine), all on the CPU.

A second embedding beside dlib's 128-d ResNet, from a different family: ArcFace (Deng et al., CVPR 2019,
"ArcFace: Additive Angular Margin Loss for Deep Face Recognition") is what identity-preserving generators
(IP-Adapter FaceID, InstantID, PuLID) condition on and what their papers report likeness with, so numbers from
this backend compare with the literature where dlib's do not.

- Detection and the 68 landmarks are dlib's (``DlibBackend``), so both backends judge the same face.
- Alignment is insightface's: five points -- the two eye centres (means of iBUG points 36-41 and 42-47), the
  nose tip (30) and the mouth corners (48, 54) -- are mapped by a similarity transform onto the standard
  112x112 ArcFace template (``insightface.utils.face_align.norm_crop``).
- The embedding is insightface's ``ArcFaceONNX`` run by onnxruntime, which also picks the input normalisation
  the way insightface does ((x - 127.5) / 127.5 on RGB, or none for MXNet exports that normalise inside the
  graph); the result is L2-normalised.

The model file is never downloaded: it is found from ``model=``, ``$WORKBENCH_ARCFACE_MODEL`` or insightface's
own cache (``~/.insightface/models/buffalo_l/w600k_r50.onnx``). insightface's model packs are for
non-commercial research only. Tests run this same code on a tiny random IResNet (``tiny_arcface``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from workbench.errors import MissingDependencyError, ModelNotAvailableError, WorkbenchError
from workbench.faces.base import Face, as_rgb_uint8

ENV_VAR = "WORKBENCH_ARCFACE_MODEL"
DEFAULT_MODEL = Path("~/.insightface/models/buffalo_l/w600k_r50.onnx")
# Cosine similarity above which two faces are the same person: deepface's ArcFace threshold, a cosine
# *distance* of 0.68 (deepface/modules/verification.py, find_threshold), i.e. similarity 1 - 0.68 = 0.32.
# deepface tuned it for its own ArcFace weights; buffalo_l's w600k_r50 is another ArcFace model, so treat it
# as the published starting point, not a calibration of that file.
THRESHOLD = 0.32
THRESHOLD_SOURCE = "deepface verification.find_threshold: ArcFace cosine distance 0.68 (similarity 0.32)"


def resolve_model_path(model: str | os.PathLike | None = None) -> Path:
    """The ArcFace ONNX file to use: ``model``, else ``$WORKBENCH_ARCFACE_MODEL``, else insightface's cache.

    Raises ``ModelNotAvailableError`` naming the exact path to fill when the file is not there.
    """
    if model is not None:
        path, how = Path(model).expanduser(), "the backend's model option"
    elif os.environ.get(ENV_VAR):
        path, how = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    else:
        path, how = DEFAULT_MODEL.expanduser(), "the default location"
    if not path.is_file():
        raise ModelNotAvailableError(
            f"No ArcFace ONNX model at {path} ({how}): copy insightface's buffalo_l w600k_r50.onnx (or any "
            f"ArcFace ONNX file) there or set ${ENV_VAR} to it -- it is never downloaded here, and insightface's "
            "models are licensed for non-commercial research only."
        )
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in chunks (a 166 MB model must not be held in memory twice)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """insightface's five alignment points from iBUG 68 landmarks, in its template's (image left-to-right) order.

    Eye centres as the mean of each eye's six contour points (insightface's detectors regress the pupil, which
    the contour mean approximates), nose tip 30, mouth corners 48 and 54.
    """
    lm = np.asarray(landmarks68, dtype=np.float32)
    if lm.shape != (68, 2):
        raise WorkbenchError(
            f"ArcFace alignment needs 68 iBUG landmarks, got an array of shape {lm.shape}: detect the face "
            "with the dlib backend (landmarks68=True)."
        )
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]]).astype(np.float32)


class ArcFaceBackend:
    """dlib detection + 68 landmarks, 5-point ArcFace alignment, ArcFace ONNX embedding (cosine, 512-d)."""

    name = "arcface"
    metric: Literal["l2", "cosine"] = "cosine"
    threshold = THRESHOLD
    threshold_source = THRESHOLD_SOURCE

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        detector: Literal["hog", "cnn"] = "hog",
        upsample: int = 1,
    ):
        missing = [m for m in ("insightface", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingDependencyError(
                f"The arcface backend needs {' and '.join(missing)}: `pip install 'headshot-workbench[insightface]'`."
            )
        self.model_path = resolve_model_path(model)
        # Logged with every run: the threshold only means something for the exact file it is applied to.
        self.model_sha256 = file_sha256(self.model_path)
        self._net = _load_arcface(self.model_path)
        from workbench.faces.dlib_backend import DlibBackend

        self._dlib = DlibBackend(detector=detector, upsample=upsample, landmarks68=True)

    @property
    def input_size(self) -> int:
        return int(self._net.input_size[0])

    def describe(self) -> dict[str, str | float]:
        """What a run should log to be reproducible: the model file, its hash, the threshold and its source."""
        return {
            "backend": self.name,
            "model_file": str(self.model_path),
            "model_sha256": self.model_sha256,
            "metric": self.metric,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
        }

    def detect(self, image: np.ndarray) -> list[Face]:
        return self._dlib.detect(image)

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The face warped onto the ArcFace template: an RGB ``input_size`` x ``input_size`` crop."""
        from insightface.utils.face_align import norm_crop

        if face.landmarks is None:
            raise WorkbenchError(
                "ArcFace alignment needs the face's 68 landmarks (eyes, nose tip, mouth corners): detect it "
                "with this backend or the dlib backend with landmarks68=True."
            )
        with warnings.catch_warnings():  # insightface calls skimage's deprecated SimilarityTransform.estimate
            warnings.filterwarnings("ignore", message=".*`estimate` is deprecated.*", category=FutureWarning)
            return norm_crop(as_rgb_uint8(image), five_points(face.landmarks), image_size=self.input_size)

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        aligned = self.align(image, face)
        # ArcFaceONNX takes OpenCV's BGR and swaps to RGB itself (blobFromImages(..., swapRB=True)).
        feature = self._net.get_feat(np.ascontiguousarray(aligned[..., ::-1])).ravel().astype(np.float32)
        norm = float(np.linalg.norm(feature))
        if not np.isfinite(norm) or norm == 0.0:
            raise WorkbenchError(
                f"The ArcFace model {self.model_path} returned a zero or non-finite embedding: check that the "
                "file is an ArcFace recognition model (input 1x3x112x112, one 512-d output)."
            )
        return feature / norm


def _load_arcface(path: Path):
    """insightface's ArcFaceONNX on a CPU session, after checking the file is a square-input embedding model."""
    import onnxruntime
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable graphs
        raise WorkbenchError(
            f"{path} is not a loadable ONNX model ({type(e).__name__}: {e}): use an ArcFace ONNX file such as "
            "buffalo_l's w600k_r50.onnx."
        ) from e
    shape = session.get_inputs()[0].shape
    outputs = session.get_outputs()
    if len(shape) != 4 or not all(isinstance(s, int) for s in shape[2:]) or shape[2] != shape[3] \
            or shape[2] % 112 or len(outputs) != 1:  # fmt: skip
        raise WorkbenchError(
            f"{path} does not look like an ArcFace recognition model (input {shape}, {len(outputs)} outputs): "
            "it needs one N x 3 x 112k x 112k input and one embedding output, like buffalo_l's w600k_r50.onnx."
        )
    return ArcFaceONNX(model_file=str(path), session=session)
