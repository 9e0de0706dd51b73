"""AI-detectability: the probe is scored only on held-out images; the CLIP path runs on a tiny random CLIP."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.evaluate.detect import (
    azimuthal_spectrum,
    clip_features,
    detectability,
    fit_and_score,
    load_clip_vision,
    spectral_features,
)  # fmt: skip


@pytest.fixture(scope="module")
def real_and_generated(astronaut, grace_hopper):
    """Real crops of bundled photos vs "generated" ones: the same crops through a 2x nearest-neighbour
    up-sampling (the up-convolution trace frequency-domain detectors look for)."""
    rng = np.random.default_rng(0)
    real, fake = [], []
    for i in range(24):
        source = astronaut if i % 2 == 0 else grace_hopper
        y, x = rng.integers(0, source.shape[0] - 128), rng.integers(0, source.shape[1] - 128)
        crop = source[y : y + 128, x : x + 128]
        real.append(crop)
        y, x = rng.integers(0, source.shape[0] - 64), rng.integers(0, source.shape[1] - 64)
        small = source[y : y + 64, x : x + 64]
        fake.append(cv2.resize(small, (128, 128), interpolation=cv2.INTER_NEAREST))
    return real, fake


def test_spectrum_profile_shape():
    profile = azimuthal_spectrum(np.random.default_rng(0).integers(0, 255, (100, 140, 3), dtype=np.uint8), 64)
    assert profile.shape == (32,) and abs(profile.mean()) < 1e-9


def test_detector_is_scored_on_a_held_out_split(real_and_generated):
    real, fake = real_and_generated
    result = detectability(real, fake, [f"real{i}" for i in range(len(real))], [f"ai{i}" for i in range(len(fake))],
                           test_size=0.5, n_boot=200, seed=1)  # fmt: skip
    assert set(result.train_ids).isdisjoint(result.test_ids)
    assert len(result.train_ids) + len(result.test_ids) == 48
    assert result.accuracy.n == len(result.test_ids) == 24
    assert result.accuracy.est >= 0.8 and result.auc.est >= 0.8
    for e in (result.accuracy, result.auc):
        assert e.lo <= e.est <= e.hi


def test_unlearnable_labels_score_near_chance(real_and_generated):
    real, _ = real_and_generated
    features = spectral_features(real + real)
    labels = np.random.default_rng(0).permutation([0] * 24 + [1] * 24)
    result = fit_and_score(features, labels, [str(i) for i in range(48)], n_boot=100)
    # Training accuracy of a linear probe on 48 features would be ~1.0; held-out accuracy stays near chance.
    assert result.accuracy.lo < 0.6


def test_detector_refuses_too_few_images(real_and_generated):
    real, fake = real_and_generated
    with pytest.raises(WorkbenchError, match="at least 4 real"):
        detectability(real[:3], fake[:10], [f"r{i}" for i in range(3)], [f"a{i}" for i in range(10)])


def test_clip_probe_runs_on_a_tiny_random_clip(real_and_generated):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=16)  # fmt: skip
    model = CLIPVisionModel(config).eval()
    real, fake = real_and_generated
    assert clip_features(real[:3], model).shape == (3, 32)
    result = detectability(real[:8], fake[:8], [f"r{i}" for i in range(8)], [f"a{i}" for i in range(8)],
                           backend="clip", clip_model=model, n_boot=50)  # fmt: skip
    assert set(result.train_ids).isdisjoint(result.test_ids) and result.backend == "clip"


def test_missing_clip_weights_say_what_to_do(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="detector: spectral"):
        load_clip_vision(str(tmp_path / "no-clip-here"))
