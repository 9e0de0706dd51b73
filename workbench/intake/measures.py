"""Measurements of one face from its 68 iBUG landmarks: sharpness, light, eyes, mouth, colour, pose.

Each function returns one number with a plain meaning; the checks in ``checks.py`` compare them against the
thresholds in :class:`~workbench.intake.config.IntakeConfig`. Landmark indices follow iBUG 300-W (0-16 jaw,
17-26 brows, 27-35 nose, 36-41 image-left eye, 42-47 image-right eye, 48-59 outer lips, 60-67 inner lips).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from workbench.faces import Face
from workbench.faces.base import mean_eye_aspect


@dataclass
class FaceMeasures:
    face_px: float  # detector box side in source pixels
    sharpness: float
    brightness: float  # mean face CIELAB L / 100
    clipped: float  # fraction of face pixels with luma >= 250 (blown out)
    eye_contrast: float  # eye-region / cheek lightness
    mouth_open: float  # inner-lip aspect ratio
    eye_open: float  # mean eye aspect ratio
    mouth_width: float  # mouth corners distance / outer eye corners distance (smiles are wider)
    colour_cast: float  # |median a*, b*| of the whole image (a robust grey-world estimate)
    colourfulness: float  # mean chroma of the face
    skin_hue: float  # CIELAB hue angle of the face's mean colour in degrees (skin: about 40-70)
    side_light: float  # (left cheek - right cheek) / mean cheek lightness
    roll: float  # degrees, eye line against the horizontal
    yaw: float  # degrees, approximate; sign: + when the nose points to image-right

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def measure_face(image: np.ndarray, face: Face, lab: np.ndarray | None = None) -> FaceMeasures:
    if face.landmarks is None:
        raise ValueError("measure_face needs 68-point landmarks")
    pts = face.landmarks.astype(np.float64)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB) if lab is None else lab
    mask = face_mask(image.shape[:2], pts)
    lightness = lab[..., 0].astype(np.float64) * (100.0 / 255.0)
    a, b = lab[..., 1].astype(np.float64) - 128.0, lab[..., 2].astype(np.float64) - 128.0
    inside = mask > 0
    left, right = cheek_lightness(lightness, pts)
    cheeks = max((left + right) / 2.0, 1e-6)
    return FaceMeasures(
        face_px=face.size,
        sharpness=sharpness(image, pts),
        brightness=float(lightness[inside].mean() / 100.0) if inside.any() else 0.0,
        clipped=float((cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[inside] >= 250).mean())
        if inside.any()
        else 0.0,
        eye_contrast=eye_lightness(lightness, pts) / cheeks,
        mouth_open=mouth_aspect_ratio(pts),
        eye_open=eye_aspect_ratio(pts),
        mouth_width=float(np.linalg.norm(pts[54] - pts[48]) / max(np.linalg.norm(pts[45] - pts[36]), 1e-6)),
        colour_cast=float(np.hypot(np.median(a), np.median(b))),
        colourfulness=float(np.hypot(a[inside], b[inside]).mean()) if inside.any() else 0.0,
        skin_hue=float(np.degrees(np.arctan2(b[inside].mean(), a[inside].mean()))) if inside.any() else 0.0,
        side_light=(left - right) / cheeks,
        roll=roll_degrees(pts),
        yaw=yaw_degrees(pts),
    )


def face_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Convex hull of jaw and brows: the face without hair and background."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(pts[:27]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


def sharpness(image: np.ndarray, pts: np.ndarray, size: int = 128) -> float:
    """Std of the Laplacian over the std of intensity, on the face resized to ``size`` px.

    Resizing makes the score independent of the face's pixel size; dividing by the intensity spread makes
    it independent of exposure, so a dark photo is not also called blurry.
    """
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    gray = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    interpolation = cv2.INTER_AREA if gray.shape[1] > size else cv2.INTER_CUBIC
    gray = cv2.resize(gray, (size, size), interpolation=interpolation).astype(np.float64)
    return float(cv2.Laplacian(gray, cv2.CV_64F).std() / max(gray.std(), 1.0))


def _patch_mean(channel: np.ndarray, centre: np.ndarray, radius: float) -> float:
    h, w = channel.shape
    r = max(int(round(radius)), 1)
    x, y = int(round(centre[0])), int(round(centre[1]))
    patch = channel[max(y - r, 0) : min(y + r + 1, h), max(x - r, 0) : min(x + r + 1, w)]
    return float(patch.mean()) if patch.size else 0.0


def cheek_lightness(lightness: np.ndarray, pts: np.ndarray) -> tuple[float, float]:
    """Mean L of a patch on each cheek (between the lower eyelid, the nose wing and the jaw)."""
    radius = 0.06 * np.linalg.norm(pts[16] - pts[0])
    left = (pts[41] + pts[31] + pts[2]) / 3.0
    right = (pts[46] + pts[35] + pts[14]) / 3.0
    return _patch_mean(lightness, left, radius), _patch_mean(lightness, right, radius)


def eye_lightness(lightness: np.ndarray, pts: np.ndarray) -> float:
    """Mean L over boxes around both eyes, big enough to be covered by sunglasses lenses."""
    values = []
    for eye in (pts[36:42], pts[42:48]):
        centre = eye.mean(0)
        half_w = 0.75 * (eye[:, 0].max() - eye[:, 0].min())
        half_h = max(0.8 * half_w, 2.0)
        h, w = lightness.shape
        x0, x1 = int(max(centre[0] - half_w, 0)), int(min(centre[0] + half_w + 1, w))
        y0, y1 = int(max(centre[1] - half_h, 0)), int(min(centre[1] + half_h + 1, h))
        patch = lightness[y0:y1, x0:x1]
        if patch.size:
            values.append(patch.mean())
    return float(np.mean(values)) if values else 0.0


def mouth_aspect_ratio(pts: np.ndarray) -> float:
    """Inner lips: mean vertical opening over width (0 closed, ~0.2 talking, > 0.45 wide open)."""
    vertical = (
        np.linalg.norm(pts[61] - pts[67])
        + np.linalg.norm(pts[62] - pts[66])
        + np.linalg.norm(pts[63] - pts[65])
    )
    return float(vertical / (3.0 * max(np.linalg.norm(pts[64] - pts[60]), 1e-6)))


def eye_aspect_ratio(pts: np.ndarray) -> float:
    """Soukupova & Cech's EAR averaged over both eyes (~0.3 open, < 0.15 closed or squinting)."""
    return mean_eye_aspect(pts)


def roll_degrees(pts: np.ndarray) -> float:
    left, right = pts[36:42].mean(0), pts[42:48].mean(0)
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def yaw_degrees(pts: np.ndarray) -> float:
    """Approximate yaw from where the nose tip sits between the face's left and right edges.

    On a head seen as a cylinder (edges: outer eye corners and the jaw at eye height, ~68 degrees round on
    average; nose tip ~1.2 radii out), the nose's offset from the edges' midpoint over the half-width is
    about 0.9 * tan(yaw). Good enough to tell front / 3/4 / profile, not for measurement.
    """
    angle = np.radians(roll_degrees(pts))
    rotate = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    xs = (pts @ rotate.T)[:, 0]  # x along the eye line
    left_edge = (xs[0] + xs[1] + xs[36]) / 3.0
    right_edge = (xs[16] + xs[15] + xs[45]) / 3.0
    half = max((right_edge - left_edge) / 2.0, 1e-6)
    offset = (xs[30] - (left_edge + right_edge) / 2.0) / half
    return float(np.degrees(np.arctan(offset / 0.9)))


def pose_label(yaw: float, front: float, profile: float) -> str:
    magnitude = abs(yaw)
    return "front" if magnitude < front else ("three_quarter" if magnitude < profile else "profile")


def expression_label(m: FaceMeasures) -> str:
    if m.mouth_open >= 0.25:
        return "open_mouth"
    if m.mouth_width >= 0.62 or m.mouth_open >= 0.08:
        return "smile"
    return "neutral"


def lighting_label(m: FaceMeasures) -> str:
    if abs(m.side_light) >= 0.2:
        return "side"
    if m.brightness < 0.45:
        return "low_key"
    if m.brightness > 0.72:
        return "high_key"
    return "even"
