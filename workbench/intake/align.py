"""Eye-aligned square crops, framed like FFHQ (Karras et al.) with a configurable margin.

The eye line is rotated level; the crop is centred a little below the eyes, towards the mouth, and its side is
``4 * max(eye distance, 0.9 * eye-to-mouth distance) * crop_scale``, which is FFHQ's framing at scale 1.0.
Landmarks and the face box are mapped into crop coordinates with the same affine matrix, so downstream
stages (face-masked losses, likeness) can find the face without detecting it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.faces import Face


@dataclass
class Alignment:
    matrix: np.ndarray  # 2x3, source pixels -> crop pixels
    side: float  # crop side in source pixels
    resolution: int

    @property
    def upscale(self) -> float:
        """How much the crop is enlarged to reach the resolution (> 1 means softer than the source)."""
        return self.resolution / max(self.side, 1e-6)

    def apply(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return points @ self.matrix[:, :2].T + self.matrix[:, 2]

    def box(self, box: tuple[float, float, float, float]) -> list[float]:
        x0, y0, x1, y1 = box
        corners = self.apply(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
        lo = np.clip(corners.min(0), 0, self.resolution)
        hi = np.clip(corners.max(0), 0, self.resolution)
        return [round(float(v), 2) for v in (*lo, *hi)]


def plan_alignment(face: Face, resolution: int, crop_scale: float = 1.3) -> Alignment:
    left_eye, right_eye = (np.asarray(p, dtype=np.float64) for p in face.eye_centers())
    eye_avg = (left_eye + right_eye) / 2.0
    eye_to_eye = right_eye - left_eye
    if face.landmarks is not None:
        mouth = (face.landmarks[48] + face.landmarks[54]).astype(np.float64) / 2.0
    else:  # five points only: the mouth sits about one eye distance below the eyes
        mouth = eye_avg + np.array([-eye_to_eye[1], eye_to_eye[0]])
    eye_to_mouth = mouth - eye_avg
    side = 4.0 * max(np.hypot(*eye_to_eye), 0.9 * np.hypot(*eye_to_mouth)) * crop_scale
    centre = eye_avg + 0.1 * eye_to_mouth
    angle = np.degrees(np.arctan2(eye_to_eye[1], eye_to_eye[0]))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), resolution / side)
    matrix[:, 2] += resolution / 2.0 - centre
    return Alignment(matrix, float(side), resolution)


def warp(image: np.ndarray, alignment: Alignment) -> tuple[np.ndarray, float]:
    """The aligned crop and the fraction of it that lies outside the photo (filled by reflection)."""
    res = alignment.resolution
    matrix = alignment.matrix.copy()
    source = image
    scale = res / alignment.side
    if scale < 0.5:
        # Warping samples points, so a strong reduction aliases: shrink with area averaging first.
        factor = min(1.0, 2.0 * scale)
        source = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        matrix[:, :2] /= factor
    crop = cv2.warpAffine(
        source, matrix, (res, res), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101
    )
    inside = cv2.warpAffine(
        np.ones(source.shape[:2], np.uint8), matrix, (res, res), flags=cv2.INTER_NEAREST, borderValue=0
    )
    return crop, float(1.0 - inside.mean())
