"""Validation by construction of the retouching index: real skin blurred by known amounts reads smoother by that
much; re-encoding, exposure, mirroring, resolution and skin tone do not move it (much).

Figures measured here (384 px crops; astronaut / grace_hopper; sigma in analysis px, ~1.5 mm on the face):
- whole image blurred 0.5 / 1 / 1.5 / 2 px -> recovered 0.55 / 1.14 / 1.60 / 2.45 and 0.26 / 0.77 / 1.34 / 1.88;
- skin only blurred the same -> 0.56 / 1.02 / 1.54 / 2.13 and 0.50 / 0.94 / 1.55 / 2.09;
- controls (JPEG q95, x0.8 exposure, +25 offset, mirror, 300 px copy): ratio 0.975-1.034, sigma <= 0.18;
- recoloured to MST 2 / MST 9: ratio 1.04 / 0.98 and 1.12 / 0.90 (a 1 px blur: 0.78 / 0.84).
"""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.evaluate.ladder import crop_portrait, recolour_skin
from workbench.evaluate.retouch import (
    ANALYSIS_IOD,
    calibrate_blur,
    equivalent_blur_sigma,
    inter_ocular,
    retouch_index,
    retouch_ratio,
    sigma_from_ratio,
    skin_texture,
)  # fmt: skip
from workbench.evaluate.skin import MST_LAB, skin_mask
from workbench.faces import get_backend

SIGMAS = (0.5, 1.0, 1.5, 2.0)
CONTROL_TOLERANCE = 0.05  # measured |ratio - 1| <= 0.034 for every control on both faces


def _landmarks(image: np.ndarray) -> np.ndarray:
    faces = get_backend("dlib", upsample=1).detect(image)
    assert faces, "dlib found no face in a test image"
    return faces[0].landmarks


@pytest.fixture(scope="module")
def subjects(astronaut, grace_hopper) -> dict[str, dict]:
    """Each bundled face cropped as the ladder does, its landmarks, and a blur calibration on its references
    (the photo and its mirror image: two 'own photos' of the subject)."""
    out = {}
    for name, image in (("astronaut", astronaut), ("grace_hopper", grace_hopper)):
        crop = crop_portrait(image)
        mirror = np.ascontiguousarray(crop[:, ::-1])
        lm = _landmarks(crop)
        refs, ref_lms = [crop, mirror], [lm, _landmarks(mirror)]
        out[name] = {"image": crop, "lm": lm, "index": retouch_index(crop, lm), "refs": refs, "ref_lms": ref_lms,
                     "calibration": calibrate_blur(refs, ref_lms)}  # fmt: skip
    return out


def _blur_skin_only(image: np.ndarray, lm: np.ndarray, sigma: float) -> np.ndarray:
    """A retouch: the skin (mask grown by 0.15 IOD, feathered) blurred, eyes, brows, lips and hair left sharp."""
    iod = inter_ocular(lm)
    grown = cv2.dilate(skin_mask(lm, image.shape).astype(np.float32), np.ones((int(0.15 * iod) | 1,) * 2))
    weight = cv2.GaussianBlur(grown, (0, 0), 0.05 * iod)[..., None]
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.round(weight * blurred + (1.0 - weight) * image).astype(np.uint8)


@pytest.mark.parametrize("mode", ["whole image", "skin only"])
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_index_falls_with_blur_and_the_blur_is_recovered(subjects, name, mode):
    s = subjects[name]
    native = inter_ocular(s["lm"]) / ANALYSIS_IOD  # image px per analysis px
    indices, recovered = [s["index"]], []
    for sigma in SIGMAS:
        blur = sigma * native  # the known blur, in the image's own pixels
        if mode == "whole image":
            changed = cv2.GaussianBlur(s["image"], (0, 0), blur)
        else:
            changed = _blur_skin_only(s["image"], s["lm"], blur)
        index = retouch_index(changed, _landmarks(changed))  # detected again, as the suite would
        indices.append(index)
        recovered.append(sigma_from_ratio(index / s["calibration"].reference_index, s["calibration"]))
    print(name, mode, "true", SIGMAS, "recovered", np.round(recovered, 2), "ratios",
          np.round(np.array(indices[1:]) / s["index"], 3))  # fmt: skip
    assert np.all(np.diff(indices) < 0)  # strictly smoother with every step
    # Within 0.35 px up to 1.5 px (measured <= 0.24); at 2 px the index nears its floor and the calibration
    # curve flattens, so 0.6 px there (measured <= 0.45).
    for sigma, got in zip(SIGMAS, recovered, strict=True):
        assert got == pytest.approx(sigma, abs=0.35 if sigma <= 1.5 else 0.6), (sigma, got)


def _jpeg(image: np.ndarray, quality: int = 95) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_controls_keep_the_ratio_near_one(subjects, name):
    s = subjects[name]
    image = s["image"]
    controls = {
        "jpeg q95": _jpeg(image),
        "exposure x0.8": (image * 0.8).astype(np.uint8),
        "offset +25": np.clip(image.astype(int) + 25, 0, 255).astype(np.uint8),
        "mirror": np.ascontiguousarray(image[:, ::-1]),
        "300 px copy": cv2.resize(image, (300, 300), interpolation=cv2.INTER_AREA),  # scale-free
    }
    for label, control in controls.items():
        ratio = retouch_ratio(retouch_index(control, _landmarks(control)), [s["index"]])
        sigma = sigma_from_ratio(ratio, s["calibration"])
        print(name, label, f"ratio {ratio:.3f} sigma {sigma:.2f}")
        assert ratio == pytest.approx(1.0, abs=CONTROL_TOLERANCE), label
        assert sigma <= 0.3, label  # measured <= 0.18; the smallest blur recovered above is 0.5


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_index_does_not_track_skin_tone(subjects, name):
    s = subjects[name]
    one_px = cv2.GaussianBlur(s["image"], (0, 0), inter_ocular(s["lm"]) / ANALYSIS_IOD)
    blur_effect = abs(np.log(retouch_ratio(retouch_index(one_px, _landmarks(one_px)), [s["index"]])))
    for level in (2, 9):
        recoloured = recolour_skin(s["image"], s["lm"], MST_LAB[level - 1])
        # The recolour moves no pixel, so the original landmarks hold (dlib's HOG misses some dark recolours).
        ratio = retouch_ratio(retouch_index(recoloured, s["lm"]), [s["index"]])
        print(name, f"MST {level}: ratio {ratio:.3f} (1 px blur: {np.exp(-blur_effect):.3f})")
        # Measured 0.90-1.12: the ladder's recolour clips about a third of the skin pixels at MST 2 and
        # compresses shadows at MST 9. 15% tolerance, and always less than what a 1 px blur does.
        assert ratio == pytest.approx(1.0, abs=0.15), level
        assert abs(np.log(ratio)) < blur_effect, level


def test_equivalent_blur_sigma_in_one_call_and_cost(subjects):
    s = subjects["astronaut"]
    changed = cv2.GaussianBlur(s["image"], (0, 0), inter_ocular(s["lm"]) / ANALYSIS_IOD)  # 1 analysis px
    sigma = equivalent_blur_sigma(changed, _landmarks(changed), s["refs"], s["ref_lms"])
    assert sigma == pytest.approx(1.0, abs=0.35)
    start = time.perf_counter()
    for _ in range(5):
        skin_texture(s["image"], s["lm"])
    print(f"retouch_index: {(time.perf_counter() - start) / 5 * 1000:.1f} ms per face")


def test_unmeasurable_faces_and_bad_input(subjects):
    s = subjects["astronaut"]
    small = cv2.resize(s["image"], (160, 160), interpolation=cv2.INTER_AREA)  # eyes ~30 px apart
    assert np.isnan(retouch_index(small, s["lm"] * 160 / 384))  # too small: would need upsampling
    assert np.isnan(retouch_ratio(float("nan"), [0.4])) and np.isnan(retouch_ratio(0.4, []))
    calibration = s["calibration"]
    assert sigma_from_ratio(1.2, calibration) == 0.0  # sharper than the references: no blur
    assert sigma_from_ratio(0.01, calibration) == calibration.sigmas[-1]  # beyond the grid: "at least"
    assert list(calibration.ratios) == sorted(calibration.ratios, reverse=True)
    with pytest.raises(WorkbenchError, match="68 iBUG landmarks"):
        retouch_index(s["image"], s["lm"][:5])
    with pytest.raises(WorkbenchError, match="one landmark set per reference"):
        calibrate_blur([s["image"]], [])
