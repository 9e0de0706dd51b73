"""Likeness: how close each image's face embedding is to the subject's own photos.

Per image: the distance to the centroid of the subject's embeddings, to the nearest one and the median over
all of them. An image is *verified* as the subject when its median distance to the subject's photos passes the
backend's published pairwise threshold (dlib: L2 < 0.6) -- the same decision a verification system makes for
a typical reference photo, where "nearest" would be optimistic with many references. Images with no face count
as not verified: they stay in the denominator.

Across two backends, ``rank_agreement`` says how well they agree on which images look most like the subject;
``copy_paste`` says whether an image is a copy of one training photo rather than a new picture of the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as _st

from workbench.errors import WorkbenchError
from workbench.evaluate.stats import Estimate
from workbench.faces import FaceBackend, compare, same_person
from workbench.workspace import Workspace


@dataclass
class References:
    """The subject's own photos, as embeddings (and the files they came from)."""

    embeddings: np.ndarray  # (N, D)
    files: list[str]
    backend: str
    source: str  # "intake" (its embeddings.npz) or "originals" (computed here)

    @property
    def centroid(self) -> np.ndarray:
        return self.embeddings.mean(0)


def read_intake_embeddings(workspace: Workspace, subject: str, backend: str) -> References | None:
    """The reference embeddings intake wrote, when it used this backend (else None: recompute them)."""
    from workbench.intake.dataset import read_references

    stored = read_references(workspace.intake_dir(subject))
    if stored is None or stored["backend"] != backend:
        return None  # none yet, or another embedding space
    return References(stored["embeddings"].astype(np.float32), stored["file_names"], backend, "intake")


def references_from_embeddings(embeddings: list[np.ndarray], files: list[str], backend: str) -> References:
    if not embeddings:
        raise WorkbenchError(
            "None of the subject's photos has a detectable face, so likeness cannot be measured: re-run "
            "`workbench intake` with clearer photos."
        )
    return References(np.stack(embeddings).astype(np.float32), files, backend, "originals")


def likeness(embedding: np.ndarray | None, refs: References, backend: FaceBackend) -> dict[str, float | bool]:
    """Distances of one image to the subject's photos; NaN distances and not verified when no face."""
    if embedding is None:
        nan = float("nan")
        return {"centroid_distance": nan, "nearest_distance": nan, "median_distance": nan,
                "pair_match_rate": 0.0, "verified": False}  # fmt: skip
    d = np.array([compare(embedding, r, backend.metric) for r in refs.embeddings])
    centroid = compare(embedding, refs.centroid, backend.metric)
    better = np.min if backend.metric == "l2" else np.max
    median = float(np.median(d))
    return {
        "centroid_distance": float(centroid),
        "nearest_distance": float(better(d)),
        "median_distance": median,
        "pair_match_rate": float(np.mean([same_person(x, backend) for x in d])),
        "verified": bool(same_person(median, backend)),
    }


# -- agreement between two backends ----------------------------------------------------------------------------
def rank_agreement(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    *,
    metric_a: Literal["l2", "cosine"],
    metric_b: Literal["l2", "cosine"],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Spearman rank correlation over images of two backends' per-image closeness to the subject, with a CI.

    ``a[i]`` and ``b[i]`` are image *i*'s score under each backend in that backend's own metric (an ``l2``
    distance such as dlib's, or a ``cosine`` similarity such as ArcFace's); distances are negated first, so +1
    means both backends order the images the same way from most to least like the subject. Spearman's rho
    (Spearman, 1904) is used rather than Pearson's r because the two scales are related monotonically but not
    linearly (for unit vectors cosine = 1 - L2^2 / 2). Images either backend has no score for (NaN: no face)
    are left out; ``n`` is the number of images both scored. The interval is a percentile bootstrap over
    images (resamples with a constant side, where rho is undefined, are skipped); below three images or with a
    constant side the estimate is NaN, and ``stats.too_few`` says when n is too small to show an interval.
    """
    x, y = (np.asarray(v, dtype=float).ravel() for v in (a, b))
    if x.shape != y.shape:
        raise WorkbenchError(
            f"rank_agreement needs one score per image from each backend, got {x.size} and {y.size}: score the "
            "same images, in the same order, with both backends."
        )
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = _closeness(x[keep], metric_a), _closeness(y[keep], metric_b)
    n = int(x.size)
    rho = _spearman(x, y)
    if not np.isfinite(rho):
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    boots = np.array([_spearman(x[i], y[i]) for i in rng.integers(0, n, size=(max(n_boot, 0), n))])
    boots = boots[np.isfinite(boots)]
    if boots.size == 0:
        return Estimate(rho, rho, rho, n)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    return Estimate(rho, float(min(lo, rho)), float(max(hi, rho)), n)


def _closeness(values: np.ndarray, metric: str) -> np.ndarray:
    """Scores oriented so that larger = more like the subject, whatever the backend's metric (its own inverse)."""
    if metric not in ("l2", "cosine"):
        raise WorkbenchError(
            f"Unknown embedding metric '{metric}': use 'l2' (a distance) or 'cosine' (a similarity)."
        )
    return -values if metric == "l2" else values


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # rho is undefined for a constant side and meaningless below three points
    return float(_st.spearmanr(x, y).statistic)


# -- copy-paste: is a generated face a re-rendering of one training photo? -------------------------------------
@dataclass(frozen=True)
class CopyPasteBounds:
    """When an image counts as a copy of a training photo, in the backend's metric (see ``copy_paste``)."""

    #: L2 at most / cosine at least this close to one training photo = "that photo, re-saved".
    near_duplicate: float
    #: ...and closer to that training photo than to any held-out photo of the subject by more than this.
    margin: float
    source: str


# dlib (L2), calibrated with ``calibrate_copy_paste`` on the bundled faces the tests do not judge with it (the 6
# faces of insightface's t1.jpg and Tom Hanks, as 384 px head crops, faces ~175 px wide), with the HOG detector
# at upsample 0 and 1 pooled: copies (JPEG q90 of a 0.8x resize) lay 0.035-0.132 from their photo, views that
# change the face (mirrored; mirrored + relit + 0.7x) 0.167 or more; the bound is the midpoint, 0.15. Most of a
# copy's distance is landmark jitter, not JPEG: the same distance moves by 0.010 (median), 0.022 (90th
# percentile) when only the detector's rectangle changes, so the margin is 0.02 -- a smaller gap is jitter.
# Smaller faces re-encode noisier (copies up to 0.14 at ~115 px), so the bound is for headshot-sized faces.
COPY_PASTE_BOUNDS: dict[str, CopyPasteBounds] = {
    "dlib": CopyPasteBounds(0.15, 0.02, "calibrated on bundled faces (t1.jpg x6, Tom Hanks; HOG upsample 0 and 1): "
                            "copies <= 0.132, mirrored views >= 0.167; margin = 90th pct of detector jitter 0.022"),
}  # fmt: skip


def calibrate_copy_paste(
    copies: np.ndarray | list[float],
    views: np.ndarray | list[float],
    *,
    metric: Literal["l2", "cosine"],
    margin: float,
    source: str = "calibrated",
) -> CopyPasteBounds:
    """The near-duplicate bound halfway between re-saved copies of photos and different views of the same faces.

    ``copies``: each photo's distance (or similarity) to a re-encoded copy of itself; ``views``: to a view of
    the same face that changes the face itself (mirrored, relit). Raises when the two overlap: then this
    backend cannot tell a copy from the person, and no bound would mean anything.
    """
    c, v = _closeness(np.asarray(copies, float), metric), _closeness(np.asarray(views, float), metric)
    if c.size == 0 or v.size == 0 or c.min() <= v.max():
        raise WorkbenchError(
            "Copies and views overlap (or one is empty), so no near-duplicate bound separates them: calibrate on "
            "larger, sharper faces or with views that change the face more."
        )
    mid = (c.min() + v.max()) / 2
    return CopyPasteBounds(float(-mid if metric == "l2" else mid), float(margin), source)


def copy_paste(
    embedding: np.ndarray | None,
    train_embeddings: np.ndarray,
    holdout_embeddings: np.ndarray,
    backend: FaceBackend,
    bounds: CopyPasteBounds | None = None,
) -> dict[str, float | int | bool]:
    """How much closer one image is to a single training photo than to the subject's held-out photos.

    WithAnyone (Xu et al., 2025, arXiv:2510.14975) names "copy-paste" the failure where an identity-conditioned
    generator reproduces the reference face instead of the person under a new pose, expression or light, and
    measures it by comparing a generation's similarity to its reference with its similarity to another photo
    of the same person; the data-copying test of Meehan et al. (AISTATS 2020) likewise compares generated
    samples' distances to the training set with held-out samples' distances to it. Here, in that spirit:

    - ``train_nearest``: closeness to the *nearest* training photo (the one it may copy; ``train_index``),
    - ``holdout_nearest``: to the nearest held-out photo, ``holdout_median`` for context,
    - ``gap``: how much closer it is to that training photo than to any held-out photo (metric units,
      positive = closer to training). Nearest on both sides, not median: the same statistic on each side keeps
      a faithful image's gap near 0, where nearest-vs-median would make every image look closer to training
      (with many more training than held-out photos the nearest training photo is still nearer by chance:
      the near-duplicate bound, not the gap, is what flags),
    - ``holdout_to_train``: how close the subject's held-out photos themselves come to a training photo -- what
      a new real photo of the person does,
    - ``copied``: ``train_nearest`` within the backend's near-duplicate bound (as close as a re-save of that
      photo) AND ``gap`` above the margin (so a subject whose photos are all near-identical is not flagged
      for resembling them). Bounds: ``COPY_PASTE_BOUNDS[backend.name]`` unless given.

    An image with no face (``embedding`` None) gets NaNs and is not flagged. Only dlib's bounds are calibrated
    (no ArcFace weights here): calibrate another backend with ``calibrate_copy_paste`` and pass ``bounds``.
    """
    train, holdout = _stack(train_embeddings, "training"), _stack(holdout_embeddings, "held-out")
    bounds = bounds or COPY_PASTE_BOUNDS.get(backend.name)
    if bounds is None:
        raise WorkbenchError(
            f"No calibrated copy-paste bounds for the '{backend.name}' backend: calibrate them with "
            "likeness.calibrate_copy_paste on re-saved vs mirrored faces and pass bounds=."
        )
    metric = backend.metric
    if embedding is None:
        nan = float("nan")
        return {"train_nearest": nan, "train_index": -1, "holdout_nearest": nan, "holdout_median": nan,
                "gap": nan, "holdout_to_train": nan, "copied": False}  # fmt: skip
    to_train = _closeness(np.array([compare(embedding, t, metric) for t in train]), metric)
    to_holdout = _closeness(np.array([compare(embedding, h, metric) for h in holdout]), metric)
    natural = max(max(_closeness(np.array([compare(h, t, metric) for t in train]), metric)) for h in holdout)
    index = int(np.argmax(to_train))
    gap = float(to_train[index] - to_holdout.max())
    near_duplicate = to_train[index] >= _closeness(np.array(bounds.near_duplicate), metric)
    return {  # closeness back to the backend's own metric (an L2 distance stays a distance)
        "train_nearest": float(_closeness(to_train[index], metric)),
        "train_index": index,
        "holdout_nearest": float(_closeness(to_holdout.max(), metric)),
        "holdout_median": float(_closeness(np.median(to_holdout), metric)),
        "gap": gap,
        "holdout_to_train": float(_closeness(np.asarray(natural), metric)),
        "copied": bool(near_duplicate and gap > bounds.margin),
    }


def _stack(embeddings: np.ndarray, which: str) -> np.ndarray:
    arr = np.asarray(embeddings, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise WorkbenchError(
            f"copy_paste needs at least one {which} photo's embedding (an N x D array), got shape {arr.shape}: "
            "hold out some of the subject's photos from training to compare against."
        )
    return arr
