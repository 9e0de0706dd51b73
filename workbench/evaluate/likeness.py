"""Likeness: how close each image's face embedding is to the subject's own photos.

Per image: the distance to the centroid of the subject's embeddings, to the nearest one and the median over
all of them. An image is *verified* as the subject when its median distance to the subject's photos passes the
backend's published pairwise threshold (dlib: L2 < 0.6) -- the same decision a verification system makes for
a typical reference photo, where "nearest" would be optimistic with many references. Images with no face count
as not verified: they stay in the denominator.
"""

from __future__ import annotations

import json
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
    source: str  # "intake" (embeddings.npy) or "originals" (computed here)

    @property
    def centroid(self) -> np.ndarray:
        return self.embeddings.mean(0)


def read_intake_embeddings(workspace: Workspace, subject: str, backend: str) -> References | None:
    """``intake/embeddings.npy`` (+ ``embeddings.json``) when intake wrote them with this backend."""
    folder = workspace.intake_dir(subject)
    npy, meta_path = folder / "embeddings.npy", folder / "embeddings.json"
    if not npy.is_file():
        return None
    embeddings = np.load(npy)
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    files: list[str] = []
    if isinstance(meta, dict):
        if meta.get("backend", backend) != backend:
            return None  # a different embedding space: recompute from the originals instead
        entries = meta.get("files") or meta.get("photos") or meta.get("items") or []
        files = [e if isinstance(e, str) else str(e.get("file") or e.get("path") or "") for e in entries]
    elif isinstance(meta, list):
        files = [e if isinstance(e, str) else str(e.get("file") or e.get("path") or "") for e in meta]
    if embeddings.ndim != 2 or len(embeddings) == 0:
        return None
    return References(embeddings.astype(np.float32), files, backend, "intake")


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
