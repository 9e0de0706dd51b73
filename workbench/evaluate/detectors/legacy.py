"""The single-split probe the suite used before the cross-validated protocol (``detect.run_detectability``).

Kept, unchanged in behaviour, until ``suite.py`` calls ``run_detectability``: a logistic probe fitted on one
split and scored on the other. Its weaknesses are why the new protocol exists -- half the images are never
scored, the CI is a bootstrap over ~10 held-out images per side, the crops are not content-matched, and the
``clip`` features here are CLIP's 1024-d pooled output rather than UnivFD's projected embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.evaluate.detectors.spectral import azimuthal_spectrum
from workbench.evaluate.detectors.univfd import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from workbench.evaluate.stats import Estimate, bootstrap_paired
from workbench.faces import as_rgb_uint8


def spectral_features(images: list[np.ndarray], size: int = 128) -> np.ndarray:
    return np.stack([azimuthal_spectrum(im, size) for im in images])


def load_clip_vision(model: str | Any, device: str = "cpu"):
    """A CLIPVisionModel from a hub id / local folder (weights must be present), or a model object as is."""
    if not isinstance(model, str):
        return model.eval()
    from transformers import CLIPVisionModel

    try:
        return CLIPVisionModel.from_pretrained(model).to(device).eval()
    except OSError as exc:
        raise ModelNotAvailableError(
            f"CLIP weights '{model}' are not on this machine and cannot be downloaded here: copy the model "
            "folder over and pass its path as clip_model, or use detector: spectral."
        ) from exc


def clip_features(images: list[np.ndarray], model: Any, batch_size: int = 16) -> np.ndarray:
    """CLIP's pooled output (class token after the final layer norm; not UnivFD's projected embedding)."""
    import torch

    size = int(model.config.image_size)
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        batch = np.stack([_clip_crop(im, size) for im in images[start : start + batch_size]])
        x = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        with torch.inference_mode():
            out.append(model(pixel_values=x.to(device)).pooler_output.float().cpu().numpy())
    return np.concatenate(out)


def _clip_crop(image: np.ndarray, size: int) -> np.ndarray:
    image = as_rgb_uint8(image)
    h, w = image.shape[:2]
    scale = size / min(h, w)
    image = cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))),
                       interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)  # fmt: skip
    h, w = image.shape[:2]
    return image[(h - size) // 2 : (h - size) // 2 + size, (w - size) // 2 : (w - size) // 2 + size]


@dataclass
class DetectorResult:
    backend: str
    accuracy: Estimate
    auc: Estimate
    train_ids: list[str]
    test_ids: list[str]
    test_labels: list[int] = field(repr=False)
    test_scores: list[float] = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The report's section: the estimates stay :class:`Estimate` objects until the report writes them."""
        return {
            "backend": self.backend, "accuracy": self.accuracy, "auc": self.auc,
            "n_train": len(self.train_ids), "n_test": len(self.test_ids),
            "train_ids": self.train_ids, "test_ids": self.test_ids,
        }  # fmt: skip


def split_ids(
    labels: np.ndarray, groups: np.ndarray | None, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices; when ``groups`` (e.g. subject ids) are given no group spans both splits."""
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    if groups is not None and len(np.unique(groups)) >= 4:
        train, test = next(
            GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(idx, labels, groups)
        )
        if len(np.unique(labels[train])) == 2 and len(np.unique(labels[test])) == 2:
            return train, test
    train, test = next(StratifiedShuffleSplit(1, test_size=test_size, random_state=seed).split(idx, labels))
    return train, test


def fit_and_score(
    features: np.ndarray,
    labels: np.ndarray | list[int],
    ids: list[str],
    *,
    backend: str = "spectral",
    groups: np.ndarray | None = None,
    test_size: float = 0.5,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> DetectorResult:
    """Fit a logistic-regression probe on the training split; report accuracy and AUC on the test split only.

    ``labels``: 1 = generated, 0 = real. Needs at least 4 images of each kind (2 per split).
    """
    y = np.asarray(labels, dtype=int)
    counts = np.bincount(y, minlength=2)
    if counts.min() < 4:
        raise WorkbenchError(
            f"The detector needs at least 4 real and 4 generated images (has {counts[0]} real, {counts[1]} "
            "generated): add the subject's photos or more generated images, or drop 'detect' from the suite."
        )
    if len(set(ids)) != len(ids):
        raise WorkbenchError(
            "Image ids given to the detector must be unique (they prove the splits are disjoint)."
        )
    train, test = split_ids(y, None if groups is None else np.asarray(groups), test_size, seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    probe.fit(features[train], y[train])
    scores = probe.predict_proba(features[test])[:, 1]
    y_test = y[test]
    kw = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    return DetectorResult(
        backend=backend,
        accuracy=bootstrap_paired(y_test, scores, lambda t, s: accuracy_score(t, s >= 0.5), **kw),
        auc=bootstrap_paired(y_test, scores, roc_auc_score, **kw),
        train_ids=[ids[i] for i in train],
        test_ids=[ids[i] for i in test],
        test_labels=y_test.tolist(),
        test_scores=scores.tolist(),
    )


def detectability(
    real: list[np.ndarray],
    generated: list[np.ndarray],
    real_ids: list[str],
    generated_ids: list[str],
    *,
    backend: Literal["spectral", "clip"] = "spectral",
    clip_model: str | Any | None = None,
    spectrum_size: int = 128,
    **fit_kwargs: Any,
) -> DetectorResult:
    """Real-vs-generated probe on held-out images."""
    images = list(real) + list(generated)
    if backend == "spectral":
        features = spectral_features(images, spectrum_size)
    else:
        if clip_model is None:
            raise WorkbenchError("detector: clip needs clip_model (a hub id or a local CLIP folder).")
        features = clip_features(images, load_clip_vision(clip_model))
    labels = [0] * len(real) + [1] * len(generated)
    return fit_and_score(
        features, labels, list(real_ids) + list(generated_ids), backend=backend, **fit_kwargs
    )
