"""Facial-feature geometry: has the generator changed the shape of the subject's face?

Beautifying filters and AI headshot services are reported to narrow noses, fill lips, enlarge eyes and slim
jaws. This module turns the 68 iBUG landmarks (dlib) into scale-free ratios of such features and compares
each image with the median of the subject's own photos, in percent.

Ratios (every length in pixels of the same image, so the image's size and the face's distance cancel):

- ``nose_width``: alar width, landmarks 31-35, over the inter-ocular distance (IOD, between the eye centres,
  each the mean of its six eye landmarks; the eyes' positions are the most stable points on a face);
- ``mouth_width``: mouth corners 48-54 over IOD;
- ``lip_thickness``: upper lip height (outer 50/51/52 to inner 61/62/63) plus lower lip height (inner
  65/66/67 to outer 56/57/58), each the mean of its three vertical pairs, over IOD (not over mouth width, so
  that a wider mouth does not read as thinner lips);
- ``eye_width``: mean eye width (corners 36-39 and 42-45) over IOD (enlarged eyes);
- ``eye_aspect``: the eye aspect ratio of Soukupova & Cech (2016), (|p2-p6| + |p3-p5|) / (2 |p1-p4|), mean of
  both eyes: openness, which also moves with expression and blinks;
- ``face_width_height``: the width between the jaw contour's top ends (0 and 16, near the ears at eye level;
  the 68-point model marks no zygion, so this is a proxy of bizygomatic width) over the height from the nasion
  (27, top of the nose bridge) to the menton (8, bottom of the chin);
- ``lower_face_width``: the jaw width at mouth level (4-12, a proxy of the bigonial width) over the width 0-16
  (the lower-face taper that "V-line" slimming changes).

``geometry_index`` is the mean absolute percent change over these ratios except ``eye_aspect`` (openness is
expression, not anatomy; it is still reported).

**Pose.** These are 2-D ratios of a 3-D face and are *not* pose-invariant: turning the head by 15 degrees
already shortens horizontal lengths by ~3.4% (cos 15). ``yaw_proxy`` measures the turn from the nose tip's
position between the jaw's ends (in the eye-levelled frame, so roll does not count); on a cylinder head
it is close to tan(yaw) (0.16 at 10 degrees, 0.32 at 20 in the tests), and a real nose, standing out of that
cylinder, reads larger. Faces beyond ``YAW_LIMIT`` are marked, not compared. Pitch (nodding) changes
vertical ratios and is not gated: keep the references and the prompts frontal.

**Landmarks.** dlib's 68 points are whole pixels, follow the detector's box as much as the face, and are not
mirror-symmetric, so ``refine_landmarks`` re-runs the predictor at a fixed scale on a box derived from the
face, on the image and its mirror, and takes the median (~35 ms). Even so, dlib's shape model pulls points
toward the average face: in the tests a nose widened by 20% reads +9 to +12%. Local changes are therefore
*under*-reported (read them as lower bounds); global proportions are recovered (width x1.10: +6 to +10%).
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.errors import WorkbenchError
from workbench.faces import as_rgb_uint8
from workbench.faces.base import as_landmarks68, mean_eye_aspect

RATIOS = (
    "nose_width", "mouth_width", "lip_thickness", "eye_width", "eye_aspect", "face_width_height",
    "lower_face_width",
)  # fmt: skip
SUMMARY_RATIOS = tuple(r for r in RATIOS if r != "eye_aspect")
# |yaw_proxy| beyond this is not compared: a turn of ~12-13 degrees on a cylinder head (measured in the tests),
# where foreshortening (1 - cos) reaches ~2.5%, the size of the ratios' own noise.
YAW_LIMIT = 0.2
# iBUG 68 index of each point's mirror image (jaw, brows, nose, eyes, outer and inner lips).
FLIP_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip
REFINE_BOX_PX = 400  # the face is resampled so its box is this wide before the refining predictions
# Boxes of the final refining round: (dx, dy, scale) relative to the landmark-derived box.
JITTER = ((0.0, 0.0, 1.0), (0.0, 0.0, 0.94), (0.0, 0.0, 1.06), (0.04, 0.0, 1.0), (-0.04, 0.0, 1.0),
          (0.0, 0.04, 1.0), (0.0, -0.04, 1.0))  # fmt: skip


def _check(landmarks: np.ndarray) -> np.ndarray:
    return as_landmarks68(landmarks, "Face geometry")


def _box_from_landmarks(lm: np.ndarray) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the box dlib's HOG detector would draw around these landmarks.

    Measured on the bundled faces: the detector's square is about as wide as the landmarks' extent and its
    centre ~10% of its side above theirs. Deriving the box from the face itself, not from the detector,
    makes the landmarks follow the face's content instead of the detector's coarse box (8-px HOG cells).
    """
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    side = float(max(x1 - x0, y1 - y0))
    return float(x0 + x1) / 2, float(y0 + y1) / 2 - 0.1 * side, side


def _predict(predictor, image: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    import dlib

    half = side / 2
    rect = dlib.rectangle(*(int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half)))
    return np.array([[p.x, p.y] for p in predictor(image, rect).parts()], dtype=np.float64)


def refine_landmarks(image: np.ndarray, landmarks: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Steadier 68 landmarks for geometry: dlib's predictor re-run on a fixed-scale face, mirrored, and jittered.

    dlib's landmarks are whole pixels, follow the detector's box as much as the face, and are not mirror
    symmetric; a ratio of a 30-px nose width then moves by several percent between two copies of one photo.
    Here the face is resampled so its box is ``REFINE_BOX_PX`` wide (sub-pixel precision), the box is
    re-derived from the landmarks for ``rounds`` rounds, and the last round takes the per-point median over the
    ``JITTER`` boxes on the image and on its mirror (points swapped back with ``FLIP_68``): test-time
    augmentation, as in face-alignment benchmarks. About 2 * (rounds - 1 + len(JITTER)) predictions, ~3 ms each.
    """
    from workbench.faces.dlib_backend import landmark_predictor

    image, lm = as_rgb_uint8(image), _check(landmarks)
    predictor = landmark_predictor(68)
    cx, cy, side = _box_from_landmarks(lm)
    # One working crop (and its mirror) for every prediction: the face plus a margin, at the fixed scale.
    scale = REFINE_BOX_PX / max(side, 1.0)
    h, w = image.shape[:2]
    x0, y0 = int(max(0, cx - 1.3 * side)), int(max(0, cy - 1.3 * side))
    x1, y1 = int(min(w, cx + 1.3 * side)), int(min(h, cy + 1.3 * side))
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    work = np.ascontiguousarray(
        cv2.resize(image[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=interp)
    )
    mirror, width = np.ascontiguousarray(work[:, ::-1]), work.shape[1]
    pts = (lm - [x0, y0]) * scale
    for r in range(max(1, rounds)):
        cx, cy, side = _box_from_landmarks(pts)
        found = []
        for dx, dy, s in JITTER if r == max(1, rounds) - 1 else JITTER[:1]:
            bx, by = cx + dx * side, cy + dy * side
            found.append(_predict(predictor, work, bx, by, s * side))
            flipped = _predict(predictor, mirror, width - 1 - bx, by, s * side)
            flipped[:, 0] = width - 1 - flipped[:, 0]
            found.append(flipped[FLIP_68])
        pts = np.median(np.stack(found), axis=0)
    return pts / scale + [x0, y0]


def _dist(lm: np.ndarray, a: int | list[int], b: int | list[int]) -> float:
    """Mean distance between landmark(s) ``a`` and landmark(s) ``b``, pair by pair."""
    return float(np.mean(np.linalg.norm(lm[a] - lm[b], axis=-1)))


def geometry_ratios(landmarks: np.ndarray) -> dict[str, float]:
    """The scale-free feature ratios of one face (see the module docstring for the points used)."""
    lm = _check(landmarks)
    iod = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))
    if iod <= 1e-6:
        raise WorkbenchError(
            "The two eye centres coincide: the landmarks are not of a face; detect it again."
        )
    upper = _dist(lm, [50, 51, 52], [61, 62, 63])
    lower = _dist(lm, [56, 57, 58], [65, 66, 67])
    return {
        "nose_width": _dist(lm, 31, 35) / iod,
        "mouth_width": _dist(lm, 48, 54) / iod,
        "lip_thickness": (upper + lower) / iod,
        "eye_width": _dist(lm, [36, 42], [39, 45]) / iod,
        "eye_aspect": mean_eye_aspect(lm),
        "face_width_height": _dist(lm, 0, 16) / _dist(lm, 27, 8),
        "lower_face_width": _dist(lm, 4, 12) / _dist(lm, 0, 16),
    }


def yaw_proxy(landmarks: np.ndarray) -> float:
    """How far the head is turned: (left span - right span) / (sum), the spans from the jaw's ends (0, 16) to
    the nose tip (30) along the eye line. 0 frontal; ~tan(yaw) on a cylinder head; the sign says which way."""
    lm = _check(landmarks)
    axis = lm[42:48].mean(0) - lm[36:42].mean(0)
    axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
    x = lm @ axis  # positions along the eye line: in-plane rotation (roll) does not count as a turn
    left, right = x[30] - x[0], x[16] - x[30]
    return float((left - right) / max(left + right, 1e-9))


def is_frontal(landmarks: np.ndarray, limit: float = YAW_LIMIT) -> bool:
    """Whether the face is frontal enough for its ratios to be compared with frontal references."""
    return abs(yaw_proxy(landmarks)) <= limit


def geometry_shift(ratios: dict[str, float], reference_ratios: list[dict[str, float]]) -> dict[str, float]:
    """Percent change of each ratio against the median of the subject's references, and ``geometry_index``.

    Keys: ``<ratio>_pct`` (+ = larger in the image) for every ratio in ``RATIOS``, and ``geometry_index``,
    the mean |percent change| over ``SUMMARY_RATIOS``. NaN throughout when there are no references.
    """
    shift: dict[str, float] = {}
    for name in RATIOS:
        refs = np.array([r[name] for r in reference_ratios if np.isfinite(r.get(name, np.nan))], dtype=float)
        value = float(ratios.get(name, np.nan))
        shift[f"{name}_pct"] = 100.0 * (value / float(np.median(refs)) - 1.0) if refs.size else float("nan")
    summary = [abs(shift[f"{name}_pct"]) for name in SUMMARY_RATIOS]
    shift["geometry_index"] = float(np.mean(summary)) if np.all(np.isfinite(summary)) else float("nan")
    return shift


def geometry_report(
    landmarks: np.ndarray, reference_landmarks: list[np.ndarray], limit: float = YAW_LIMIT
) -> dict[str, float]:
    """One face against the subject's references: the shift, ``yaw_proxy`` and ``frontal`` (1.0 / 0.0).

    Turned references are left out of the median; when the face itself is turned, or no reference is
    frontal, every shift is NaN (marked, not compared) -- a turned head is not an altered face.
    """
    refs = [geometry_ratios(r) for r in reference_landmarks if is_frontal(r, limit)]
    yaw = yaw_proxy(landmarks)
    frontal = abs(yaw) <= limit
    shift = geometry_shift(geometry_ratios(landmarks), refs if frontal else [])
    return {**shift, "yaw_proxy": yaw, "frontal": float(frontal), "n_references": float(len(refs))}
