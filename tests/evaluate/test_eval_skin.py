"""Measurement validity of the skin-tone code: known shifts are recovered, every swatch maps to itself."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.evaluate.analyse import analyse
from workbench.evaluate.ladder import shift_lightness
from workbench.evaluate.skin import (
    MST_HEX,
    MST_LAB,
    hex_to_rgb,
    lightening_rate,
    measure_skin,
    nearest_mst,
    pooled_skin,
    robust_lab,
    skin_colour_from_lab,
    skin_mask,
    skin_shift,
)  # fmt: skip


def test_each_mst_swatch_maps_to_its_own_index():
    for index, hex_value in enumerate(MST_HEX, start=1):
        patch = np.tile(hex_to_rgb(hex_value), (40, 40, 1))
        lab, n = robust_lab(patch, np.ones((40, 40), bool))
        mst, distance = nearest_mst(lab)
        assert (mst, n > 0) == (index, True), hex_value
        assert distance < 0.5


def test_mst_scale_gets_darker():
    assert np.all(np.diff(MST_LAB[3:, 0]) < 0)  # L* falls from swatch 4 on (1-3 are near-equal lightness)


@pytest.mark.parametrize("delta_l", [8.0, -6.0])
def test_known_lightening_inside_the_skin_mask_is_recovered(astronaut, dlib_faces, delta_l):
    face, _ = dlib_faces["astronaut"]
    changed = shift_lightness(astronaut, face.landmarks, delta_l)
    before = analyse(astronaut, embed=False).skin
    after = analyse(changed, embed=False).skin  # detected again: landmarks and mask from the new image
    shift = skin_shift(after, before)
    assert shift["delta_L"] == pytest.approx(delta_l, abs=1.0)
    assert abs(shift["delta_hue"]) < 3.0
    assert lightening_rate([shift["delta_L"]], 3.0) == (1.0 if delta_l > 3 else 0.0)


def test_mask_covers_cheeks_nose_forehead_not_eyes_or_lips(astronaut, dlib_faces):
    face, _ = dlib_faces["astronaut"]
    lm = face.landmarks
    mask = skin_mask(lm, astronaut.shape)
    assert mask.sum() > 500
    for points in (lm[36:42], lm[42:48], lm[48:60], lm[17:27]):  # eyes, lips, brows
        x, y = np.round(points.mean(0)).astype(int)
        assert not mask[y, x]
    x, y = np.round((lm[2] + lm[31]) / 2).astype(int)  # the left cheek
    assert mask[y, x]


def test_robust_colour_ignores_a_minority_of_outliers(astronaut, dlib_faces):
    face, _ = dlib_faces["astronaut"]
    mask = skin_mask(face.landmarks, astronaut.shape)
    clean = measure_skin(astronaut, face.landmarks)
    spoiled = astronaut.copy()
    ys, xs = np.nonzero(mask)
    pick = np.random.default_rng(0).choice(len(ys), len(ys) // 10, replace=False)
    spoiled[ys[pick], xs[pick]] = (20, 20, 60)  # 10% dark-blue "hair" pixels
    assert measure_skin(spoiled, face.landmarks).L == pytest.approx(clean.L, abs=1.0)


def test_hue_shift_wraps_and_pooling_is_robust():
    a = skin_colour_from_lab(np.array([60.0, 10.0, -0.5]))
    b = skin_colour_from_lab(np.array([60.0, 10.0, 0.5]))
    assert abs(skin_shift(a, b)["delta_hue"]) < 10  # 357 deg vs 3 deg is a small shift, not 354
    pooled = pooled_skin([skin_colour_from_lab(np.array([60.0, 10, 20])), None,
                          skin_colour_from_lab(np.array([62.0, 10, 20])), skin_colour_from_lab(np.array([99.0, 0, 0]))])  # fmt: skip
    assert pooled.L == pytest.approx(62.0)  # the median: the 99 outlier does not pull it
