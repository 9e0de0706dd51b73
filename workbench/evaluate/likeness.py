"""Likeness: how close each image's face embedding is to the subject's own photos.

Per image: the distance to the centroid of the subject's embeddings, to the nearest one and the median over
all of them. An image is *verified* as the subject when its median distance to the subject's photos passes the
backend's published pairwise threshold (dlib: L2 < 0.6) -- the same decision a verification system makes for
a typical reference photo, where "nearest" would be optimistic with many references. Images with no face count
as not verified: they stay in the denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.errors import WorkbenchError
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
