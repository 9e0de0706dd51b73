"""Validation by construction of the facial-geometry ratios: real faces warped by known amounts, re-detected by
dlib, and the change read back; controls that change pixels but not shape read ~0.

Figures measured here (384 px crops, refined landmarks; astronaut / grace_hopper):
- width x1.10: face_width_height +9.7 / +6.3 % (true +9.9), nose_width 0.0 / -0.6 % (true 0);
- nose widened x1.20 around landmarks 31-35: nose_width +10.9 / +9.1 % (true +20.0): dlib's shape model
  recovers about half of a local change (a lower bound), other ratios within 3%;
- controls (mirror, x1.2 brighter, x0.75 darker, blur 1 px, 8 degree roll): every summary ratio within 3.1%,
  geometry_index <= 1.5;
- pose: a 30 degree turn (cylinder head) reads |yaw_proxy| 0.25-0.40 and is marked; the untouched faces 0.01.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.evaluate.geometry import (
    FLIP_68,
    RATIOS,
    SUMMARY_RATIOS,
    YAW_LIMIT,
    geometry_ratios,
    geometry_report,
    geometry_shift,
    is_frontal,
    refine_landmarks,
    yaw_proxy,
)  # fmt: skip
from workbench.evaluate.ladder import crop_portrait
from workbench.faces import get_backend

# Largest |change| (%) a control may show: the measured noise of refined dlib landmarks is <= 3.1% on these
# faces (mouth and lip ratios are the noisiest: a few px on a ~20 px lip), plus 1 point of headroom.
CONTROL_TOLERANCE = 5.0


def _landmarks(image: np.ndarray) -> np.ndarray:
    faces = get_backend("dlib", upsample=1).detect(image)
    assert faces, "dlib found no face in a test image"
    return refine_landmarks(image, faces[0].landmarks)


@pytest.fixture(scope="module")
def portraits(astronaut, grace_hopper) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each bundled face as the ladder crops it (384 px), with its refined landmarks."""
    out = {}
    for name, image in (("astronaut", astronaut), ("grace_hopper", grace_hopper)):
        crop = crop_portrait(image)
        out[name] = (crop, _landmarks(crop))
    return out


def _ramp(distance: np.ndarray, flat: float, width: float) -> np.ndarray:
    """1 inside ``flat``, a raised-cosine fall to 0 over ``width``: a smooth, monotone warp weight."""
    t = np.clip((np.abs(distance) - flat) / width, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def _widen_nose(image: np.ndarray, lm: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale the lower nose horizontally by ``factor`` about its centre; return the image and the true
    (forward-mapped) landmarks. Inside a box around landmarks 29-35 the scale is exact, fading smoothly to
    none within a quarter of the eye distance, so the eyes, mouth corners and jaw do not move."""
    iod = np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0))
    cx = lm[31:36, 0].mean()
    half = factor * abs(lm[35, 0] - lm[31, 0]) / 2 + 0.08 * iod
    top, bottom = lm[29, 1], lm[33, 1] + 0.06 * iod

    def weight(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _ramp(x - cx, half, 0.25 * iod) * _ramp(y - (top + bottom) / 2, (bottom - top) / 2, 0.15 * iod)

    shrink = 1.0 - 1.0 / factor
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    source_x = cx + (xs - cx) * (1.0 - shrink * weight(xs, ys))  # where each output pixel samples from
    warped = cv2.remap(image, source_x.astype(np.float32), ys.astype(np.float32), cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_REFLECT)  # fmt: skip
    x = lm[:, 0].copy()
    for _ in range(50):  # invert the map at the landmarks: x such that source_x(x) == original x
        x = cx + (lm[:, 0] - cx) / (1.0 - shrink * weight(x, lm[:, 1]))
    return warped, np.stack([x, lm[:, 1]], axis=1)


def _turn_on_cylinder(image: np.ndarray, lm: np.ndarray, degrees: float) -> np.ndarray:
    """Turn the head by ``degrees`` about a vertical axis, modelling the face as a cylinder."""
    cx, radius = (lm[0, 0] + lm[16, 0]) / 2, 1.15 * (lm[16, 0] - lm[0, 0]) / 2
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float64)
    angle = np.arcsin(np.clip((xs - cx) / radius, -1.0, 1.0))
    source = cx + radius * np.sin(np.clip(angle - np.radians(degrees), -np.pi / 2, np.pi / 2))
    source = np.where(np.abs(xs - cx) < radius, source, xs)
    return cv2.remap(image, source.astype(np.float32), ys.astype(np.float32), cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT)  # fmt: skip


def _rotate_landmarks_on_cylinder(lm: np.ndarray, degrees: float) -> np.ndarray:
    """The same turn applied to the landmarks themselves (jaw ends at 80 degrees round the cylinder)."""
    cx = (lm[0, 0] + lm[16, 0]) / 2
    radius = 0.5 * (lm[16, 0] - lm[0, 0]) / np.sin(np.radians(80))
    angle = np.arcsin(np.clip((lm[:, 0] - cx) / radius, -1.0, 1.0))
    out = lm.copy()
    out[:, 0] = cx + radius * np.sin(angle + np.radians(degrees))
    return out


def test_ratios_ignore_scale_roll_translation_and_mirroring(portraits):
    _, lm = portraits["astronaut"]
    base = geometry_ratios(lm)
    theta = np.radians(20)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = (lm @ rotation.T) * 2.5 + np.array([37.0, -12.0])
    mirrored = lm[FLIP_68] * np.array([-1.0, 1.0])  # mirror image, points relabelled left <-> right
    for other in (geometry_ratios(moved), geometry_ratios(mirrored)):
        assert other == pytest.approx(base, rel=1e-9)
    assert yaw_proxy(moved) == pytest.approx(yaw_proxy(lm), abs=1e-9)  # roll is not a turn
    assert yaw_proxy(mirrored) == pytest.approx(-yaw_proxy(lm), abs=1e-9)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_global_width_stretch_is_recovered(portraits, name):
    image, lm = portraits[name]
    reference = [geometry_ratios(lm)]
    stretched = cv2.resize(image, None, fx=1.10, fy=1.0, interpolation=cv2.INTER_CUBIC)
    true = geometry_shift(geometry_ratios(lm * np.array([1.10, 1.0])), reference)
    got = geometry_shift(geometry_ratios(_landmarks(stretched)), reference)
    print(name, "width x1.10: true", {k: round(v, 1) for k, v in true.items()})
    print(name, "width x1.10: got ", {k: round(v, 1) for k, v in got.items()})
    assert true["face_width_height_pct"] == pytest.approx(9.9, abs=0.3)  # the construction itself
    # Measured +9.7 (astronaut) and +6.3 (grace_hopper, whose jaw contour blends into grey hair): dlib's
    # jaw points follow a stretch by 60-100%; 4.5 points of tolerance allow for that and stay far from 0.
    assert got["face_width_height_pct"] == pytest.approx(true["face_width_height_pct"], abs=4.5)
    # Nose width and IOD are both horizontal: the stretch cancels, as predicted (true ~0).
    assert got["nose_width_pct"] == pytest.approx(true["nose_width_pct"], abs=3.0)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_local_nose_widening_is_recovered(portraits, name):
    image, lm = portraits[name]
    reference = [geometry_ratios(lm)]
    recovered = {}
    for factor in (1.10, 1.20):
        warped, true_lm = _widen_nose(image, lm, factor)
        true = geometry_shift(geometry_ratios(true_lm), reference)
        got = geometry_shift(geometry_ratios(_landmarks(warped)), reference)
        print(name, f"nose x{factor}: true {true['nose_width_pct']:+.1f}% got {got['nose_width_pct']:+.1f}%",
              {k: round(v, 1) for k, v in got.items()})  # fmt: skip
        assert true["nose_width_pct"] == pytest.approx(100 * (factor - 1), abs=0.2)  # exact inside the box
        assert max(abs(true[f"{r}_pct"]) for r in SUMMARY_RATIOS if r != "nose_width") < 2.0
        # dlib's shape model pulls the alar points toward the average face: measured gains 0.45-0.76 of the
        # true change. The tolerance: at least a third of it (well above the <= 2.1% control noise of
        # nose_width), never more than the truth plus noise; other ratios stay within the control noise.
        assert 0.33 * true["nose_width_pct"] <= got["nose_width_pct"] <= true["nose_width_pct"] + 3.0
        assert max(abs(got[f"{r}_pct"]) for r in SUMMARY_RATIOS if r != "nose_width") <= CONTROL_TOLERANCE
        recovered[factor] = got["nose_width_pct"]
    assert recovered[1.20] > recovered[1.10]  # a larger widening reads larger


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_pixel_changes_that_keep_the_shape_read_as_no_change(portraits, name):
    image, lm = portraits[name]
    reference = [geometry_ratios(lm)]
    centre = (image.shape[1] / 2, image.shape[0] / 2)
    controls = {
        "mirror": np.ascontiguousarray(image[:, ::-1]),
        "brighter": np.clip(image * 1.2, 0, 255).astype(np.uint8),
        "darker": (image * 0.75).astype(np.uint8),
        "blur": cv2.GaussianBlur(image, (0, 0), 1.0),
        "roll 8 deg": cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, 8, 1.0), image.shape[1::-1],
                                     borderMode=cv2.BORDER_REFLECT),
    }  # fmt: skip
    for label, control in controls.items():
        shift = geometry_shift(geometry_ratios(_landmarks(control)), reference)
        print(name, label, {k: round(v, 1) for k, v in shift.items()})
        assert max(abs(shift[f"{r}_pct"]) for r in SUMMARY_RATIOS) <= CONTROL_TOLERANCE, label
        assert shift["geometry_index"] <= 2.5, label  # measured <= 1.5
        assert abs(shift["eye_aspect_pct"]) <= 12.0, (
            label
        )  # openness: noisier (a 2-px eye height), not summarised


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_pose_gate_marks_turned_faces(portraits, name):
    image, lm = portraits[name]
    assert is_frontal(lm)
    # On the landmarks themselves (exact cylinder model): the proxy grows with the turn; the gate trips
    # between 10 and 15 degrees (measured 0.14-0.16 at 10, 0.21-0.24 at 15).
    proxies = [yaw_proxy(_rotate_landmarks_on_cylinder(lm, d)) for d in (0, 5, 10, 15, 20, 30)]
    assert np.all(np.diff(proxies) > 0)
    assert abs(proxies[2]) < YAW_LIMIT < proxies[3]
    # On the image, re-detected: a 30 degree turn each way is marked (measured |proxy| 0.25-0.40).
    for degrees in (30, -30):
        turned = _landmarks(_turn_on_cylinder(image, lm, degrees))
        report = geometry_report(turned, [lm])
        print(name, degrees, "yaw proxy", round(report["yaw_proxy"], 3))
        assert np.sign(report["yaw_proxy"]) == np.sign(degrees)
        assert report["frontal"] == 0.0 and np.isnan(report["geometry_index"])
    report = geometry_report(lm, [lm])
    assert report["frontal"] == 1.0 and report["geometry_index"] == pytest.approx(0.0)


def test_shift_is_against_the_median_reference_and_bad_landmarks_raise(portraits):
    _, lm = portraits["astronaut"]
    base = geometry_ratios(lm)
    wide = dict(base, nose_width=base["nose_width"] * 1.5)  # one odd reference photo
    narrow = dict(base, nose_width=base["nose_width"] * 0.9)
    shift = geometry_shift(dict(base, nose_width=base["nose_width"] * 1.1), [base, wide, narrow])
    assert shift["nose_width_pct"] == pytest.approx(10.0)  # against the median (base), not the mean
    assert set(shift) == {f"{r}_pct" for r in RATIOS} | {"geometry_index"}
    assert np.isnan(geometry_shift(base, [])["geometry_index"])
    with pytest.raises(WorkbenchError, match="68 iBUG landmarks"):
        geometry_ratios(lm[:5])
