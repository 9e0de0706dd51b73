"""AI-detectability: can a detector tell the generated images from real photos of the same kind of content?

The protocol, in the order it runs (:func:`run_detectability`):

1. **Content matching.** Every image, real or generated, goes through one function,
   :func:`content_matched_crop`: a face-centred square of ``margin`` face-widths, shifted (never padded) to
   stay inside the image, resized to the same side with the same rule (area when shrinking, cubic when
   enlarging), then through the same encoding (JPEG at one quality by default). Framing, crop size and
   resampling therefore cannot separate the sides. It cannot remove what the pixels carry from before: a
   real photo's JPEG history and sensor noise, a different scale of resampling when one side's faces are much
   larger (the summary reports both sides' median scale and warns), or true content differences (backdrops,
   clothes).
2. **A detector plug-in** (:mod:`workbench.evaluate.detectors`) turns crops into features (a *probe*) or into
   a published detector's logits (*pretrained*, nothing fitted).
3. **Probes are cross-validated**: ``StratifiedGroupKFold`` when source ids are given (a subject's images, the
   augmentations of one photo, never on both sides of a split), else ``StratifiedKFold``; a strongly
   L2-regularised logistic regression on standardised features; every image is scored once, out of fold.
   A label-permutation test (Ojala & Garriga 2010, JMLR 11) gives the p-value of "no difference": the pooled
   out-of-fold AUC of a probe is biased *below* 0.5 when there is no signal, so the permutation null, not 0.5,
   is the fair reference at small n.
4. **Figures**: ROC AUC with a DeLong interval (:mod:`.detectors.auc`, Sun & Xu 2014), the same AUC's
   percentile bootstrap as a cross-check, accuracy at the detector's own threshold with a Wilson interval,
   and per-group AUCs (generated images of a group vs the reals of that group when the reals carry the
   column, else vs all reals) read off the same scores.

An AUC near 0.5 means *this* detector cannot tell the sides apart at this n -- not that no detector could.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.errors import WorkbenchError
from workbench.evaluate.detectors import Detector, load_detector
from workbench.evaluate.detectors.auc import delong_auc, rank_auc
from workbench.evaluate.stats import bootstrap_paired, wilson_interval
from workbench.faces import as_rgb_uint8

# Below this many images of each kind no AUC is reported. With 20 vs 20 the AUC's standard error at chance is
# sqrt((m + n + 1) / (12 m n)) = 0.092 (Hanley & McNeil 1982), so a 95% interval already spans 0.5 +/- 0.18
# (it cannot tell "undetectable" from a weak detector; fewer images only widen it); at 20 per side the
# intervals here were checked to cover the true AUC (test_eval_detect.py), and each probe fold still trains
# on 16 per side. At 5 vs 5 the old bootstrap interval collapsed to [1.00, 1.00].
MIN_PER_SIDE = 20
TOO_FEW = "too few images for a detectability estimate"
CROP_MARGIN = 2.0  # face widths per crop side: head, hair and neck, the framing of a headshot
PROBE_C = 0.1  # inverse L2 strength: strong, because a fold trains on ~30-80 images of 12-768 features
Encoding = Literal["jpeg", "png"]


def too_few_reason(n_real: int, n_generated: int, minimum: int = MIN_PER_SIDE) -> str | None:
    """Why no detectability figure is reported, or None when both sides have at least ``minimum`` images."""
    if min(n_real, n_generated) >= minimum:
        return None
    return (f"{TOO_FEW} ({n_real} real, {n_generated} generated; needs at least {minimum} of each, below "
            "which the AUC's 95% interval at chance is wider than 0.5 +/- 0.18)")  # fmt: skip


# -- 1. content matching -------------------------------------------------------------------------------------
def _square(shape: tuple[int, ...], face_box: Sequence[float] | None, margin: float) -> tuple[int, int, int]:
    """(top, left, side) of the face-centred square, shifted inside the image; the centre square if no
    face."""
    h, w = shape[:2]
    if face_box is None:
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side
    x0, y0, x1, y1 = (float(v) for v in face_box)
    if x1 <= x0 or y1 <= y0:
        raise WorkbenchError(f"face_box {tuple(face_box)} is not (x0, y0, x1, y1) with x1 > x0 and y1 > y0.")
    # Shrinking to fit (instead of padding) keeps every pixel real: padding would add flat or mirrored
    # borders, content of its own that a detector could learn.
    side = int(round(min(margin * max(x1 - x0, y1 - y0), h, w)))
    top = int(round(min(max((y0 + y1) / 2 - side / 2, 0), h - side)))
    left = int(round(min(max((x0 + x1) / 2 - side / 2, 0), w - side)))
    return top, left, side


def crop_scale(
    shape: tuple[int, ...], face_box: Sequence[float] | None, size: int, margin: float = CROP_MARGIN
) -> float:
    """How many source pixels one crop pixel spans (> 1: shrunk; < 1: enlarged, which blurs)."""
    return _square(shape, face_box, margin)[2] / size


def encode(crop: np.ndarray, encoding: Encoding = "jpeg", jpeg_quality: int = 90) -> np.ndarray:
    """The common encoding step: a JPEG round trip at one quality (PNG is lossless: returned as is).

    Real photos usually arrive as JPEGs and generated images as PNGs, and detectors learn that difference
    (Grommelt et al. 2024, "Fake or JPEG? Revealing common biases in generated image detection datasets");
    re-encoding both sides at one quality after resampling replaces most of it with a shared trace.
    """
    if encoding == "png":
        return crop
    if encoding != "jpeg" or not 1 <= jpeg_quality <= 100:
        raise WorkbenchError(
            f"encoding={encoding!r}, quality={jpeg_quality}: use 'png' or 'jpeg' with 1-100."
        )
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="JPEG", quality=int(jpeg_quality))
    return np.asarray(Image.open(buffer).convert("RGB"))


def content_matched_crop(
    image: np.ndarray,
    face_box: Sequence[float] | None,
    size: int,
    *,
    margin: float = CROP_MARGIN,
    encoding: Encoding = "jpeg",
    jpeg_quality: int = 90,
) -> np.ndarray:
    """The detector's input for any image, real or generated: a ``size`` px RGB uint8 face-centred square.

    ``face_box`` is (x0, y0, x1, y1) in pixels (a ``Face.box``); None takes the centre square.
    """
    if size < 32:
        raise WorkbenchError(f"size={size} px is too small for a detector input: use at least 32.")
    image = as_rgb_uint8(image)
    top, left, side = _square(image.shape, face_box, margin)
    crop = image[top : top + side, left : left + side]
    if side != size:
        crop = cv2.resize(
            crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        )
    return encode(np.ascontiguousarray(crop), encoding, jpeg_quality)


@dataclass(frozen=True)
class DetectorInput:
    """One image for the protocol: its id, its content-matched crop, its source id (images sharing one never
    fall on both sides of a split) and metadata for per-group AUCs (e.g. ``{"mst_band": "4-6"}``)."""

    id: str
    crop: np.ndarray = field(repr=False)
    source: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    scale: float | None = None  # crop_scale of the original (None when unknown)


def detector_input(
    id: str,
    image: np.ndarray,
    face_box: Sequence[float] | None,
    *,
    size: int,
    source: str | None = None,
    meta: Mapping[str, Any] | None = None,
    margin: float = CROP_MARGIN,
    encoding: Encoding = "jpeg",
    jpeg_quality: int = 90,
) -> DetectorInput:
    """Content-match one image (see :func:`content_matched_crop`) and record its scale."""
    crop = content_matched_crop(
        image, face_box, size, margin=margin, encoding=encoding, jpeg_quality=jpeg_quality
    )
    scale = crop_scale(np.shape(image), face_box, size, margin)
    return DetectorInput(id, crop, source, dict(meta or {}), scale)


# -- 3. cross-validated probe --------------------------------------------------------------------------------
def _folds(labels: np.ndarray, groups: np.ndarray | None, n_folds: int, seed: int) -> tuple[list, str]:
    """Train/test index pairs, and the sentence that says how they were made."""
    k = int(min(n_folds, np.bincount(labels, minlength=2).min()))
    if k < 2:
        raise WorkbenchError("Cross-validation needs at least 2 images of each kind.")
    x = np.zeros(len(labels))
    note = ""
    if groups is not None:
        spread = min(len(np.unique(groups[labels == c])) for c in (0, 1))
        if spread >= k:
            splits = list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(x, labels, groups))
            return splits, f"{k}-fold StratifiedGroupKFold over {len(np.unique(groups))} source ids"
        note = f"; source ids not used: one side spans {spread} source(s), fewer than the {k} folds"
    return list(
        StratifiedKFold(k, shuffle=True, random_state=seed).split(x, labels)
    ), f"{k}-fold StratifiedKFold{note}"


def cross_validated_scores(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    n_folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """Out-of-fold P(generated) of a logistic probe for every image, and the protocol sentence."""
    labels = np.asarray(labels, dtype=int)
    scores = np.full(len(labels), np.nan)
    splits, protocol = _folds(labels, groups, n_folds, seed)
    for train, test in splits:
        if np.unique(labels[train]).size < 2:
            raise WorkbenchError("A training fold holds one kind only: give more sources, or fewer folds.")
        # liblinear: ~10x faster than lbfgs at these sizes, which the permutation test's refits need; the
        # intercept is scaled up so that its (liblinear-specific) penalty does not pull it towards 0.
        probe = make_pipeline(
            StandardScaler(), LogisticRegression(C=PROBE_C, solver="liblinear", intercept_scaling=10.0)
        )
        probe.fit(features[train], labels[train])
        scores[test] = probe.predict_proba(features[test])[:, 1]
    return scores, f"{protocol}; L2 logistic probe (C={PROBE_C}) on standardised features; out-of-fold scores"


def permutation_p_value(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, observed_auc: float, *,
    n_permutations: int = 200, n_folds: int = 5, seed: int = 0,
) -> float:  # fmt: skip
    """P(out-of-fold AUC >= observed | labels carry no information), by refitting on shuffled labels."""
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(n_permutations):
        shuffled = rng.permutation(labels)
        scores, _ = cross_validated_scores(features, shuffled, groups, n_folds=n_folds, seed=seed + i + 1)
        hits += rank_auc(shuffled, scores) >= observed_auc
    return (hits + 1) / (n_permutations + 1)


# -- the entry point -----------------------------------------------------------------------------------------
def run_detectability(
    real: Sequence[DetectorInput],
    generated: Sequence[DetectorInput],
    *,
    detector: str | Detector = "spectral",
    weights: str | None = None,
    clip_model: str | None = None,
    n_folds: int = 5,
    n_permutations: int = 200,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    group_columns: Sequence[str] = ("mst_band",),
    device: str = "cpu",
) -> dict[str, Any]:
    """Detectability of ``generated`` against content-matched ``real`` images (see the module docstring).

    Returns the report's section: ``auc`` (Estimate, ``delong``), ``auc_bootstrap``, ``accuracy`` (Wilson),
    ``p_value`` (probes; None for pretrained detectors), ``protocol``, ``n_real``/``n_generated``,
    ``detector`` (name, source, licence, sha256, ...), ``content`` (crop size, scales, a warning if they
    differ), ``groups`` and the per-image ``scores``. Below ``MIN_PER_SIDE`` on either side: only
    ``too_few`` and the counts.
    """
    real, generated = list(real), list(generated)
    reason = too_few_reason(len(real), len(generated))
    if reason:
        return {
            "too_few": reason,
            "n_real": len(real),
            "n_generated": len(generated),
            "min_per_side": MIN_PER_SIDE,
        }
    _check_inputs(real + generated, n_folds, n_permutations, confidence)
    plugin = detector if isinstance(detector, Detector) else load_detector(
        detector, weights=weights, clip_model=clip_model, input_size=real[0].crop.shape[0], device=device
    )  # fmt: skip
    items = real + generated
    labels = np.array([0] * len(real) + [1] * len(generated))
    output = np.asarray(plugin([it.crop for it in items]), dtype=float)
    p_value = None
    if plugin.kind == "probe":
        sources = [it.source for it in items]
        groups = None if any(s is None for s in sources) else np.asarray(sources, dtype=str)
        scores, protocol = cross_validated_scores(output, labels, groups, n_folds=n_folds, seed=seed)
        if n_permutations > 0:
            observed = rank_auc(labels, scores)
            p_value = permutation_p_value(output, labels, groups, observed, n_permutations=n_permutations,
                                          n_folds=n_folds, seed=seed)  # fmt: skip
        threshold = 0.5
    else:
        scores, threshold = output, 0.0
        protocol = "published detector, weights as released, nothing fitted on these images"
    correct = int(((scores > threshold).astype(int) == labels).sum())
    return {
        "backend": plugin.info.name,
        "detector": plugin.info.to_dict(),
        "protocol": protocol,
        "auc": delong_auc(labels, scores, confidence),
        "auc_bootstrap": bootstrap_paired(
            labels, scores, rank_auc, n_boot=n_boot, confidence=confidence, seed=seed
        ),  # fmt: skip
        "accuracy": wilson_interval(correct, len(labels), confidence),
        "p_value": p_value,
        "n_permutations": n_permutations if p_value is not None else 0,
        "n_real": len(real),
        "n_generated": len(generated),
        "content": _content_summary(real, generated),
        "groups": group_aucs(real, generated, scores, group_columns, confidence),
        "scores": {it.id: float(s) for it, s in zip(items, scores, strict=True)},
    }


def _check_inputs(items: list[DetectorInput], n_folds: int, n_permutations: int, confidence: float) -> None:
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise WorkbenchError("Image ids given to the detector must be unique across both sides.")
    shapes = {np.shape(it.crop) for it in items}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise WorkbenchError(
            f"All crops must be RGB of one size (got {sorted(shapes)}): build them with "
            "detect.content_matched_crop at one size, so crop size cannot tell the sides apart."
        )
    if not 2 <= n_folds <= 20 or n_permutations < 0 or not 0.5 <= confidence < 1:
        raise WorkbenchError(
            f"n_folds={n_folds}, n_permutations={n_permutations}, confidence={confidence}: use 2-20 folds, "
            ">= 0 permutations and a confidence in [0.5, 1)."
        )


def group_aucs(
    real: Sequence[DetectorInput],
    generated: Sequence[DetectorInput],
    scores: np.ndarray,
    columns: Sequence[str],
    confidence: float = 0.95,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per group value: the AUC of that group's generated images against the reals of the same group when the
    reals carry the column, else against all reals; ``too_few`` instead below ``MIN_PER_SIDE`` per side."""
    real_scores, gen_scores = scores[: len(real)], scores[len(real) :]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for column in columns:
        values = sorted({str(g.meta[column]) for g in generated if g.meta.get(column) is not None})
        same = any(r.meta.get(column) is not None for r in real)
        out[column] = {}
        for value in values:
            g = gen_scores[[str(it.meta.get(column)) == value for it in generated]]
            r = real_scores[[str(it.meta.get(column)) == value for it in real]] if same else real_scores
            entry: dict[str, Any] = {"n_real": int(r.size), "n_generated": int(g.size),
                                     "reals": "same group" if same else "all reals"}  # fmt: skip
            reason = too_few_reason(int(r.size), int(g.size))
            if reason:
                entry["too_few"] = reason
            else:
                entry["auc"] = delong_auc(np.r_[np.zeros(r.size), np.ones(g.size)], np.r_[r, g], confidence)
            out[column][value] = entry
    return out


def _content_summary(real: list[DetectorInput], generated: list[DetectorInput]) -> dict[str, Any]:
    """Crop size and each side's median resampling scale, with a warning when they differ enough to matter."""
    summary: dict[str, Any] = {"crop_size": int(real[0].crop.shape[0])}
    scales = {side: [it.scale for it in items if it.scale is not None]
              for side, items in (("real", real), ("generated", generated))}  # fmt: skip
    if not scales["real"] or not scales["generated"]:
        return {**summary, "note": "resampling scales unknown (inputs not built with detect.detector_input)"}
    med = {side: float(np.median(v)) for side, v in scales.items()}
    summary.update(median_scale_real=med["real"], median_scale_generated=med["generated"])
    ratio = max(med.values()) / min(med.values())
    if ratio > 1.5 or min(med.values()) < 1.0 <= max(med.values()):
        # Shrinking by s low-passes at 1/(2s) of the source's frequencies; enlarging adds no detail at all.
        summary["note"] = (f"real crops were resampled {med['real']:.2f}x and generated ones "
                           f"{med['generated']:.2f}x: "
                           "resampling changes high frequencies by different amounts, which a detector can "
                           "learn; compare images of similar resolution")  # fmt: skip
    return summary
