"""Per-photo checks: each gives a score, the threshold it was held to, and a photographer's advice.

``assess_image`` is pure (no files, no tracking), so the UI, the tests and the pipeline share it. The
near-duplicate check needs the other photos and lives in :func:`duplicate_check`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from workbench.faces import Face, FaceBackend
from workbench.intake.align import Alignment, plan_alignment
from workbench.intake.config import IntakeConfig
from workbench.intake.measures import (
    FaceMeasures,
    expression_label,
    lighting_label,
    measure_face,
    pose_label,
)


@dataclass
class CheckResult:
    name: str
    score: float
    threshold: float
    passed: bool
    advice: str | None = None  # the sentence shown when the check fails
    blocking: bool = True  # False: the photo is kept, the advice is a warning

    def to_dict(self) -> dict:
        return {**asdict(self), "score": round(float(self.score), 4), "threshold": float(self.threshold)}


@dataclass
class Assessment:
    faces: list[Face]  # in the coordinates of the photo (upright, full size)
    face: Face | None  # the subject's face (largest confident one)
    measures: FaceMeasures | None
    alignment: Alignment | None
    checks: list[CheckResult] = field(default_factory=list)
    preview: np.ndarray | None = None  # the photo at analysis size (for hashes and thumbnails)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    @property
    def accepted(self) -> bool:
        return not any(c.blocking for c in self.failed)

    @property
    def reasons(self) -> list[str]:
        return [c.advice for c in self.failed if c.blocking and c.advice]

    @property
    def warnings(self) -> list[str]:
        return [c.advice for c in self.failed if not c.blocking and c.advice]

    def labels(self, config: IntakeConfig) -> dict[str, str | None]:
        m = self.measures
        if m is None:
            return {"pose": None, "expression": None, "lighting": None}
        return {
            "pose": pose_label(m.yaw, config.front_yaw, config.profile_yaw),
            "expression": expression_label(m),
            "lighting": lighting_label(m),
        }


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy at most ``max_side`` long (area-averaged) and its scale; the image itself when small enough."""
    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale == 1.0:
        return image, 1.0
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def detect_faces(image: np.ndarray, backend: FaceBackend, max_side: int) -> list[Face]:
    """Detect on a copy at most ``max_side`` long; if nothing is found, look again at twice that scale."""
    small, scale = downscale(image, max_side)
    faces = backend.detect(small)
    if not faces:  # small faces: HOG needs ~40 px, so look once more at double size
        scale = min(2.0, 2 * scale)
        faces = backend.detect(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
    return faces if scale == 1.0 else [rescale(f, 1.0 / scale) for f in faces]


def rescale(face: Face, factor: float) -> Face:
    """The face in an image ``factor`` times the size; backend objects (a dlib shape) are dropped."""

    def scaled(points: np.ndarray | None) -> np.ndarray | None:
        return None if points is None else np.asarray(points, dtype=np.float32) * factor

    box = tuple(float(v) * factor for v in face.box)
    return Face(box, face.score, scaled(face.landmarks), scaled(face.landmarks5))  # type: ignore[arg-type]


def primary_face(faces: list[Face], min_score: float) -> Face | None:
    confident = [f for f in faces if f.score >= min_score]
    pool = confident or faces
    return max(pool, key=lambda f: f.width * f.height) if pool else None


def assess_image(image: np.ndarray, backend: FaceBackend, config: IntakeConfig) -> Assessment:
    faces = detect_faces(image, backend, config.detect_max_side)
    # Light, colour and sharpness are measured at analysis size: a 12 MP photo tells no more about them.
    preview, scale = downscale(image, max(config.detect_max_side, 1024))
    face = primary_face(faces, config.other_face_min_score)
    checks: list[CheckResult] = []
    warn_only = set(config.warn_only)

    def add(name: str, score: float, threshold: float, passed: bool, advice: str) -> None:
        checks.append(
            CheckResult(name, score, threshold, passed, None if passed else advice, name not in warn_only)
        )

    add("no_face", len(faces), 1, face is not None,
        "No face was found: use a photo where your face is clearly visible, facing the camera, with good light.")  # fmt: skip
    if face is None:
        return Assessment(faces, None, None, None, checks, preview)

    others = [f for f in faces if f is not face and f.score >= config.other_face_min_score]
    ratio = max((f.size / face.size for f in others), default=0.0)
    people = 1 + sum(f.size / face.size >= config.other_face_ratio for f in others)
    add("multiple_faces", ratio, config.other_face_ratio, ratio < config.other_face_ratio,
        f"{people} faces of similar size are in the photo: crop it so only you are in the frame, "
        "or choose a photo of you alone.")  # fmt: skip

    alignment = plan_alignment(face, config.resolution, config.crop_scale)
    add("face_too_small", alignment.upscale, config.max_upscale, alignment.upscale <= config.max_upscale,
        f"The face is only about {face.size:.0f} px wide, so its crop would be enlarged {alignment.upscale:.1f}x "
        f"to reach {config.resolution} px and look soft: use a closer or higher-resolution photo.")  # fmt: skip

    if face.landmarks is None:  # a backend without 68 points: only the geometric checks apply
        return Assessment(faces, face, None, alignment, checks, preview)
    m = measure_face(preview, rescale(face, scale) if scale != 1.0 else face)
    m.face_px = face.size
    add("blur", m.sharpness, config.min_sharpness, m.sharpness >= config.min_sharpness,
        "The face is blurry (out of focus or moving): use a sharp photo; hold still, tap to focus on the "
        "face, and avoid zoomed or heavily compressed copies.")  # fmt: skip
    add("underexposed", m.brightness, config.min_brightness, m.brightness >= config.min_brightness,
        "The face is too dark: face a window or a lamp, or choose a photo taken in better light.")  # fmt: skip
    add("overexposed", m.brightness, config.max_brightness, m.brightness <= config.max_brightness,
        "The face is too bright and washed out: avoid direct flash or harsh sun; shade or a window works best.")  # fmt: skip
    add("clipped_highlights", m.clipped, config.max_clipped, m.clipped <= config.max_clipped,
        f"{m.clipped:.0%} of the face is blown out to pure white: avoid flash and midday sun on the face.")  # fmt: skip
    add("occluded_eyes", m.eye_contrast, config.min_eye_contrast, m.eye_contrast >= config.min_eye_contrast,
        "The eyes are hidden (sunglasses, hair, hands or deep shadow): the eyes carry much of your likeness, "
        "so use photos with both eyes clearly visible.")  # fmt: skip
    add("mouth_open", m.mouth_open, config.max_mouth_open, m.mouth_open <= config.max_mouth_open,
        "The mouth is wide open (laughing, shouting or mid-word): the model will repeat it; prefer a relaxed "
        "smile or a neutral face.")  # fmt: skip
    add("eyes_closed", m.eye_open, config.min_eye_open, m.eye_open >= config.min_eye_open,
        "The eyes are closed or squinting: pick a photo with open, relaxed eyes.")  # fmt: skip
    add("colour_cast", m.colour_cast, config.max_colour_cast, m.colour_cast <= config.max_colour_cast,
        "The photo has a strong colour cast or tint (filter, sepia, coloured light): use an unfiltered photo "
        "in neutral light, or the model will learn the tint as your skin tone.")  # fmt: skip
    hue_ok = (
        m.colourfulness < config.min_colourfulness or config.min_skin_hue <= m.skin_hue <= config.max_skin_hue
    )
    add("skin_hue", m.skin_hue, config.max_skin_hue if m.skin_hue > config.min_skin_hue else config.min_skin_hue,
        hue_ok, "The skin colour is unnatural (a colour filter or strong coloured light): use an unfiltered "
        "photo in daylight or white light.")  # fmt: skip
    add("monochrome", m.colourfulness, config.min_colourfulness, m.colourfulness >= config.min_colourfulness,
        "The photo is black-and-white or nearly colourless: use colour photos so the model learns your "
        "real skin and hair colour.")  # fmt: skip
    add("tilt", abs(m.roll), config.max_tilt, abs(m.roll) <= config.max_tilt,
        f"The head is tilted {abs(m.roll):.0f} degrees: it will be straightened, but an upright head with the "
        "camera at eye level gives more natural results.")  # fmt: skip
    return Assessment(faces, face, m, alignment, checks, preview)


def perceptual_hash(image: np.ndarray):
    import imagehash
    from PIL import Image

    return imagehash.phash(Image.fromarray(image))


def duplicate_check(phash, earlier: dict[str, object], config: IntakeConfig) -> CheckResult:
    """Compare with the photos already accepted (name -> hash); the later copy of a pair is the one refused."""
    distance, name = min(((int(phash - h), n) for n, h in earlier.items()), default=(64, None))
    passed = distance > config.max_duplicate_distance
    advice = (
        None if passed else
        f"This is a near-duplicate of {name}: duplicates overweight one look without adding anything; "
        "keep one and add a photo with a different angle, expression or light."
    )  # fmt: skip
    return CheckResult("duplicate", distance, config.max_duplicate_distance, passed, advice,
                       "duplicate" not in config.warn_only)  # fmt: skip
