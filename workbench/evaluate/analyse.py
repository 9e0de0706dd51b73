"""One pass over one image: find the face once, then derive every per-face measurement from it.

Detection is the expensive step, so each image is detected once, at an analysis size where a headshot's
face is roughly 150-250 px (HOG needs ~80 px; more only costs time), with no upsampling; only when nothing
is found is it retried with upsampling, so small faces are not missed. Landmarks, the embedding, the skin
colour and the quality measures all reuse that one detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from workbench.evaluate.geometry import refine_landmarks
from workbench.evaluate.illumination import CompensatedSkin, measure_skin_compensated
from workbench.evaluate.retouch import retouch_index
from workbench.evaluate.skin import SkinColour, measure_skin, srgb_to_lab
from workbench.faces import FaceBackend, as_rgb_uint8, get_backend

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif")


@dataclass
class FaceAnalysis:
    """What the suite knows about one image."""

    face_found: bool
    n_faces: int = 0
    face_px: float = float("nan")  # face box size at the analysis scale
    landmarks: np.ndarray | None = None  # (68, 2) at the analysis scale
    geometry_landmarks: np.ndarray | None = None  # (68, 2) refined for the geometry ratios, full-image scale
    embedding: np.ndarray | None = None
    embedding2: np.ndarray | None = None  # the second backend's (ArcFace) embedding of the same face
    skin: SkinColour | None = None
    skin_compensated: CompensatedSkin | None = None  # the same skin after the face's own white balance
    box: tuple[float, float, float, float] | None = None  # face box at the analysis scale
    scale: float = 1.0  # analysis size / original size
    retouch: float = float("nan")  # skin texture index (retouch.retouch_index; lower = smoother)
    sharpness: float = float("nan")  # variance of the Laplacian of the face crop at 128 px
    exposure: float = float("nan")  # mean L* of the face crop, 0-100
    clipped: float = float("nan")  # share of face-crop pixels blown out or crushed
    extra: dict = field(default_factory=dict)


def load_image(path: str | Path) -> np.ndarray:
    """Images are decoded as intake decodes uploads, so the subject's phone photos and the generated sRGB
    images are measured in the same colour space."""
    from workbench.intake.reading import read_image

    return read_image(path)


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def backend_for(name: str, upsample: int = 0) -> FaceBackend:
    return get_backend(name, upsample=upsample) if name == "dlib" else get_backend(name)


# A detection scoring below this share of the image's best one is not counted as a face. dlib's HOG detector
# runs at threshold 0 and returns weak hits (scores 0.01-0.16 on the astronaut's mission patch, against 1.2-1.6
# for her face); sorted by size alone, such a hit was measured instead of the face in 2 of the demo's 7 photos.
RELATIVE_MIN_SCORE = 0.25


def confident_faces(faces: list) -> list:
    """The detections that count as faces, largest first (backends sort by size; scores are backend-scaled)."""
    if not faces:
        return []
    best = max(f.score for f in faces)
    return [f for f in faces if f.score >= RELATIVE_MIN_SCORE * best] if best > 0 else list(faces)


def second_backend(name: str | None, model: str | None = None) -> tuple[FaceBackend | None, dict]:
    """The second likeness backend and what a run logs about it, or None and why it is not used."""
    from workbench.errors import MissingDependencyError, ModelNotAvailableError

    if not name:
        return None, {"skipped": "no second backend configured (second_face_backend: null)"}
    try:
        backend = get_backend(name, model=model) if name == "arcface" else get_backend(name)
    except (ModelNotAvailableError, MissingDependencyError) as exc:
        return None, {"backend": name, "skipped": str(exc)}
    describe = getattr(backend, "describe", None)
    info = (
        describe()
        if describe
        else {"backend": name, "metric": backend.metric, "threshold": backend.threshold}
    )
    return backend, info


def resize_for_analysis(image: np.ndarray, analysis_size: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = analysis_size / max(h, w)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def analyse(
    image: np.ndarray,
    backend: str = "dlib",
    *,
    analysis_size: int = 512,
    retry_upsample: bool = True,
    embed: bool = True,
    skin: bool = True,
    white_method: str = "auto",
    second: FaceBackend | None = None,
    texture: bool = False,
    geometry: bool = False,
) -> FaceAnalysis:
    """Detect the largest face once and measure it (embedding, raw and compensated skin colour, sharpness,
    exposure)."""
    image = as_rgb_uint8(image)
    small = resize_for_analysis(image, analysis_size)
    detector = backend_for(backend, 0)
    faces = detector.detect(small)
    if not faces and retry_upsample and backend == "dlib":
        detector = backend_for(backend, 1)
        faces = detector.detect(small)
    faces = confident_faces(faces)
    if not faces:
        return FaceAnalysis(face_found=False)
    face = faces[0]
    result = FaceAnalysis(face_found=True, n_faces=len(faces), face_px=face.size, landmarks=face.landmarks,
                          box=face.box, scale=small.shape[1] / image.shape[1])  # fmt: skip
    if embed:
        result.embedding = detector.embed(small, face)
        if second is not None and face.landmarks is not None:  # same face, aligned by the second backend
            result.embedding2 = second.embed(small, face)
    if skin and face.landmarks is not None:
        result.skin = measure_skin(small, face.landmarks)
        result.skin_compensated = measure_skin_compensated(small, face.landmarks, method=white_method)
    if texture and face.landmarks is not None:
        # On the full image: the index resamples the face to a fixed eye distance itself, and a face shrunk
        # for detection first would lose the very texture being measured.
        result.retouch = retouch_index(image, face.landmarks / result.scale)
    if geometry and face.landmarks is not None:
        # One dlib fit jitters feature widths by up to ~16%; the median of fits on shifted boxes and the mirror
        # image brings that to ~3% (tests/evaluate/test_eval_geometry.py).
        result.geometry_landmarks = refine_landmarks(image, face.landmarks / result.scale)
    crop = _face_crop(small, face.box)
    if crop is not None:
        grey = cv2.cvtColor(cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        result.sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
        result.exposure = float(np.mean(srgb_to_lab(crop[::2, ::2])[..., 0]))
        # Blown out (all channels near white) or crushed (all near black); one saturated channel is colour.
        result.clipped = float(np.mean((crop.min(-1) >= 250) | (crop.max(-1) <= 5)))
    return result


def _face_crop(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return image[y0:y1, x0:x1]
