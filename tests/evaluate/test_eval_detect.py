"""The detectability protocol: content matching, cross-validated probe, DeLong AUC, per-group figures.

The validation sets are built by construction from the bundled real faces (9 faces: astronaut, Grace Hopper,
the six of insightface's t1.jpg, Tom Hanks), 4 jittered/flipped crops each = 36 per side:

* a **null**: the same photos vs copies with the backdrop replaced by flat colours and gradients -- the sides
  differ only in content, so a sound protocol must not call them distinguishable;
* a **positive control**: the same photos vs copies put through 2x nearest-neighbour up-sampling (the
  up-convolution trace of Durall et al. 2020) -- a sound protocol must find it.
"""

from __future__ import annotations

import importlib.resources

import cv2
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from workbench.errors import WorkbenchError
from workbench.evaluate.detect import (
    MIN_PER_SIDE,
    TOO_FEW,
    DetectorInput,
    content_matched_crop,
    crop_scale,
    cross_validated_scores,
    detector_input,
    run_detectability,
)  # fmt: skip
from workbench.evaluate.detectors.auc import delong_auc, delong_components, rank_auc
from workbench.evaluate.stats import bootstrap_paired
from workbench.faces import get_backend

SIZE = 128
PER_FACE = 4
BACKDROPS = [((90, 120, 160), (230, 200, 170)), ((40, 60, 90), (180, 120, 100)),
             ((150, 170, 200), (240, 230, 210)), ((20, 20, 30), (200, 180, 150))]  # fmt: skip


@pytest.fixture(scope="module")
def bundled_faces(astronaut, grace_hopper) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """Each bundled face as (a working window of its photo 3 face-widths wide, the face box in it)."""
    images = importlib.resources.files("insightface") / "data" / "images"
    photos = [astronaut, grace_hopper] + [np.asarray(Image.open(images / n).convert("RGB"))
                                          for n in ("t1.jpg", "Tom_Hanks_54745.png")]  # fmt: skip
    backend = get_backend("dlib", upsample=1)
    out = []
    for i, photo in enumerate(photos):
        faces = backend.detect(photo)
        for face in faces[:1] if i == 0 else faces:  # the astronaut's second "face" is a badge
            x0, y0, x1, y1 = face.box
            side = 3 * max(x1 - x0, y1 - y0)
            top, left = int(max(0, (y0 + y1 - side) / 2)), int(max(0, (x0 + x1 - side) / 2))
            window = photo[top : int(top + side), left : int(left + side)]
            out.append((window, (x0 - left, y0 - top, x1 - left, y1 - top)))
    assert len(out) == 9
    return out


def replace_backdrop(image: np.ndarray, box, colours, horizontal: bool) -> np.ndarray:
    """Head ellipse + shoulders kept (feathered), the rest a linear gradient between two colours."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    fw, fh = x1 - x0, y1 - y0
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (int((x0 + x1) / 2), int((y0 + y1) / 2 - 0.1 * fh)), (int(0.75 * fw), int(0.9 * fh)),
                0, 0, 360, 1, -1)  # fmt: skip
    shoulders = [[x0 - 0.9 * fw, h], [x0 - 0.6 * fw, y1 + 0.5 * fh], [x0 + 0.15 * fw, y1],
                 [x1 - 0.15 * fw, y1], [x1 + 0.6 * fw, y1 + 0.5 * fh], [x1 + 0.9 * fw, h]]  # fmt: skip
    cv2.fillPoly(mask, [np.array(shoulders, np.int32)], 1)
    mask = cv2.GaussianBlur(mask, (0, 0), 0.03 * fw)[..., None]
    t = np.linspace(0, 1, w)[None, :, None] if horizontal else np.linspace(0, 1, h)[:, None, None]
    backdrop = (1 - t) * np.array(colours[0], np.float32) + t * np.array(colours[1], np.float32)
    return np.clip(mask * image + (1 - mask) * backdrop, 0, 255).astype(np.uint8)


def nearest_upsampled(image: np.ndarray) -> np.ndarray:
    """Half resolution, then 2x nearest-neighbour up-sampling: the checkerboard of a naive up-sampler."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w // 2 * 2, h // 2 * 2), interpolation=cv2.INTER_NEAREST)


def build_side(faces, kind: str, seed: int, meta=None) -> list[DetectorInput]:
    """PER_FACE crops per face: alternate mirror images, the face box jittered by up to 8% of its width."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (photo, box) in enumerate(faces):
        for j in range(PER_FACE):
            image = photo
            if kind == "backdrop":
                image = replace_backdrop(photo, box, BACKDROPS[j], horizontal=j % 2 == 0)
            elif kind == "upsampled":
                image = nearest_upsampled(photo)
            x0, y0, x1, y1 = box
            if j % 2:
                image, (x0, x1) = (
                    np.ascontiguousarray(image[:, ::-1]),
                    (image.shape[1] - x1, image.shape[1] - x0),
                )
            dx, dy = rng.uniform(-0.08, 0.08, 2) * (x1 - x0)
            box_j = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
            meta_j = (meta or {}).get(i, {})
            out.append(
                detector_input(f"{kind}-{i}-{j}", image, box_j, size=SIZE, source=f"face{i}", meta=meta_j)
            )
    return out


@pytest.fixture(scope="module")
def sides(bundled_faces) -> dict[str, list[DetectorInput]]:
    return {
        kind: build_side(bundled_faces, kind, seed)
        for seed, kind in enumerate(("real", "backdrop", "upsampled"))
    }


# -- content matching ----------------------------------------------------------------------------------------
def test_content_matched_crop_frames_the_same_face_the_same_way_at_any_resolution(bundled_faces):
    photo, box = bundled_faces[1]  # Grace Hopper
    big = cv2.resize(photo, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    a = content_matched_crop(photo, box, SIZE, encoding="png")
    b = content_matched_crop(big, tuple(2 * v for v in box), SIZE, encoding="png")
    assert a.shape == b.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
    # Same framing: the two crops differ only by resampling (tolerance 4 grey levels mean, 255 scale).
    assert np.abs(a.astype(float) - b.astype(float)).mean() < 4.0
    assert crop_scale(big.shape, tuple(2 * v for v in box), SIZE) == pytest.approx(
        2 * crop_scale(photo.shape, box, SIZE)
    )


def test_a_crop_near_the_border_is_shifted_inside_never_padded():
    image = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    crop = content_matched_crop(
        image, (0, 0, 40, 40), 64, margin=2.0, encoding="png"
    )  # wants 80 px at (-20, -20)
    expected = cv2.resize(image[0:80, 0:80], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop, expected)
    centre = content_matched_crop(image, None, 64, encoding="png")  # no face: the centre square
    assert np.array_equal(centre, cv2.resize(image[:, 50:250], (64, 64), interpolation=cv2.INTER_AREA))
    jpeg = content_matched_crop(image, None, 64, jpeg_quality=90)  # the shared encoding step changes pixels
    assert jpeg.shape == centre.shape and not np.array_equal(jpeg, centre)


# -- the two validation claims -------------------------------------------------------------------------------
def test_content_only_differences_are_not_reported_as_detectable(sides):
    result = run_detectability(sides["real"], sides["backdrop"], n_permutations=50, n_boot=500)
    auc = result["auc"]
    print(
        f"content-only null: AUC {auc.est:.3f} [{auc.lo:.3f}, {auc.hi:.3f}] ({auc.method}), "
        f"p={result['p_value']:.2f}"
    )
    assert result["n_real"] == result["n_generated"] == 36 and auc.n == 72
    assert "StratifiedGroupKFold over 9 source ids" in result["protocol"]
    assert auc.method == "delong" and auc.lo <= 0.5 <= auc.hi  # chance is inside the interval
    assert result["p_value"] > 0.05  # and the permutation test does not reject "no difference"


def test_a_generation_trace_is_reported_as_detectable(sides):
    result = run_detectability(sides["real"], sides["upsampled"], n_permutations=50, n_boot=500)
    auc = result["auc"]
    print(
        f"2x nearest up-sampling: AUC {auc.est:.3f} [{auc.lo:.3f}, {auc.hi:.3f}], p={result['p_value']:.3f}"
    )
    assert auc.lo > 0.5 and result["p_value"] < 0.05
    assert result["accuracy"].method == "wilson" and result["accuracy"].est > 0.5
    assert result["detector"]["name"] == "spectral" and result["detector"]["kind"] == "probe"
    assert set(result["scores"]) == {it.id for it in sides["real"] + sides["upsampled"]}


def _full_band_profile(crop: np.ndarray) -> np.ndarray:
    """The earlier probe's feature: the azimuthally averaged log power spectrum of the whole band, unwindowed,
    normalised to zero mean (Durall et al. 2020)."""
    grey = crop.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # luma, as OpenCV's RGB2GRAY
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    yy, xx = np.indices(power.shape)
    r = np.hypot(yy - grey.shape[0] / 2, xx - grey.shape[1] / 2).astype(int)
    radial = np.bincount(r.ravel(), np.log1p(power).ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    profile = radial[1 : grey.shape[0] // 2 + 1]
    return profile - profile.mean()


def test_full_band_unwindowed_spectrum_learns_content_that_the_high_pass_features_ignore(sides):
    """Why the probe keeps only windowed high frequencies: the earlier full-band profile separates the
    content-only sets (point AUC >= 0.6 on these fixed data), the high-pass features do not (<= 0.6)."""
    items = sides["real"] + sides["backdrop"]
    labels = np.array([0] * 36 + [1] * 36)
    groups = np.array([it.source for it in items])
    full_band = np.stack([_full_band_profile(it.crop) for it in items])
    scores, _ = cross_validated_scores(full_band, labels, groups)
    ours = run_detectability(sides["real"], sides["backdrop"], n_permutations=0, n_boot=0)["auc"].est
    print(f"content-only null: full-band AUC {roc_auc_score(labels, scores):.3f}, high-pass AUC {ours:.3f}")
    assert roc_auc_score(labels, scores) >= 0.6 >= ours


# -- DeLong --------------------------------------------------------------------------------------------------
def test_fast_delong_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(23), np.ones(31)].astype(int)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties
    auc, v10, v01 = delong_components(labels, scores)
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # Mann-Whitney kernel
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert np.allclose(v10, psi.mean(1), atol=1e-12) and np.allclose(v01, psi.mean(0), atol=1e-12)


def test_delong_interval_agrees_with_the_bootstrap_on_the_same_scores():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(150), np.ones(150)].astype(int)
    scores = rng.normal(labels * 1.0, 1.0)  # binormal, true AUC = Phi(1 / sqrt 2) = 0.760
    d = delong_auc(labels, scores)
    b = bootstrap_paired(labels, scores, rank_auc, n_boot=2000, seed=1)
    print(f"DeLong [{d.lo:.3f}, {d.hi:.3f}] vs bootstrap [{b.lo:.3f}, {b.hi:.3f}]")
    # Both estimate the same sampling spread; 2000 resamples put ~0.005 of Monte Carlo noise on each bootstrap
    # endpoint, so endpoints within 0.015 of each other are the same interval.
    assert d.est == pytest.approx(b.est) and abs(d.lo - b.lo) < 0.015 and abs(d.hi - b.hi) < 0.015


@pytest.mark.parametrize("shift", [0.95, 2.65])  # true AUC Phi(shift / sqrt 2): 0.75 and 0.970
def test_auc_interval_covers_the_true_auc_at_the_minimum_sample(shift):
    from scipy.stats import norm

    truth, rng, hits = norm.cdf(shift / np.sqrt(2)), np.random.default_rng(int(shift * 100)), 0
    labels = np.r_[np.zeros(MIN_PER_SIDE), np.ones(MIN_PER_SIDE)].astype(int)
    for _ in range(400):
        e = delong_auc(labels, rng.normal(labels * shift, 1.0))
        hits += e.lo <= truth <= e.hi
    # Nominal 95%; 400 draws give a Monte Carlo SE of 1.1 points, so 0.91-0.99 is a correct interval.
    print(f"true AUC {truth:.3f}: coverage {hits / 400:.3f}")
    assert 0.91 <= hits / 400 <= 0.99


def test_perfect_separation_gets_an_interval_not_one_point():
    labels = np.r_[np.zeros(20), np.ones(20)].astype(int)
    e = delong_auc(labels, np.arange(40.0))
    assert e.method == "newcombe" and e.est == 1.0 == e.hi and 0.8 < e.lo < 0.97


# -- output shape: groups, too few, bad input ----------------------------------------------------------------
def test_per_group_aucs_and_too_few_groups(bundled_faces, sides):
    bands = {i: {"mst_band": "1-3" if i < 6 else "7-10"} for i in range(9)}  # 24 and 12 generated images
    generated = build_side(bundled_faces, "upsampled", 2, meta=bands)
    result = run_detectability(sides["real"], generated, n_permutations=0, n_boot=100)
    groups = result["groups"]["mst_band"]
    assert groups["1-3"]["reals"] == "all reals" and groups["1-3"]["n_real"] == 36
    assert groups["1-3"]["n_generated"] == 24 and groups["1-3"]["auc"].method == "delong"
    assert (
        groups["7-10"]["too_few"].startswith(f"{TOO_FEW} (36 real, 12 generated")
        and "auc" not in groups["7-10"]
    )
    # When the reals carry the column, a group is compared with the reals of the same group.
    real = build_side(bundled_faces, "real", 0, meta=bands)
    same = run_detectability(real, generated, n_permutations=0, n_boot=0)["groups"]["mst_band"]
    assert same["1-3"]["reals"] == "same group" and same["1-3"]["n_real"] == 24


def test_below_the_minimum_there_is_a_reason_and_no_number(sides):
    result = run_detectability(sides["real"][: MIN_PER_SIDE - 1], sides["upsampled"])
    assert set(result) == {"too_few", "n_real", "n_generated", "min_per_side"}
    assert result["too_few"].startswith(
        f"{TOO_FEW} ({MIN_PER_SIDE - 1} real, 36 generated; needs at least 20"
    )


def test_inputs_are_checked(sides):
    real = sides["real"]
    with pytest.raises(WorkbenchError, match="unique"):
        run_detectability(real, real)
    odd = [DetectorInput(f"x{i}", np.zeros((64, 64, 3), np.uint8)) for i in range(MIN_PER_SIDE)]
    with pytest.raises(WorkbenchError, match="one size"):
        run_detectability(real, odd)
    with pytest.raises(WorkbenchError, match="Unknown detector"):
        run_detectability(real, sides["backdrop"], detector="nope")


def test_resampling_scales_that_differ_are_flagged(sides):
    shrunk = [
        DetectorInput(it.id + "s", it.crop, it.source, it.meta, 3.0 * (it.scale or 1)) for it in sides["real"]
    ]
    content = run_detectability(sides["real"], shrunk, n_permutations=0, n_boot=0)["content"]
    assert content["median_scale_generated"] == pytest.approx(3 * content["median_scale_real"])
    assert "compare images of similar resolution" in content["note"]
