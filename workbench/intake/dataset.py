"""The aligned training set as a Hugging Face imagefolder: PNG crops plus ``metadata.jsonl``.

``datasets.load_dataset("imagefolder", data_dir=<subject>/dataset)`` gives one ``train`` split with the
columns below; every row carries the caption (``text``), the face box and the landmarks in crop pixels, so a
trainer can build face masks without detecting again. The subject's reference embeddings (one per accepted
photo, from the intake's face backend) are stored beside the per-photo report in ``intake/embeddings.npz``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

METADATA = "metadata.jsonl"
EMBEDDINGS = "embeddings.npz"


class DatasetWriter:
    """Writes into ``<dataset>.tmp`` and swaps it in on :meth:`commit`, so a failed intake keeps the old set."""

    def __init__(self, dataset_dir: Path):
        self.final = dataset_dir
        self.staging = dataset_dir.with_name(dataset_dir.name + ".tmp")
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        self.rows: list[dict] = []

    def add(self, crop: np.ndarray, row: dict) -> str:
        name = f"{len(self.rows):03d}.png"
        Image.fromarray(crop).save(self.staging / name, compress_level=3)  # 3: fast, within ~5% of 9's size
        self.rows.append({"file_name": name, **row})
        return name

    def commit(self) -> Path:
        with open(self.staging / METADATA, "w") as handle:
            for row in self.rows:
                handle.write(json.dumps(row) + "\n")
        old = self.final.with_name(self.final.name + ".old")
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.staging, self.final)
        if old.exists():
            shutil.rmtree(old)
        return self.final

    def abort(self) -> None:
        if self.staging.exists():
            shutil.rmtree(self.staging)


def save_embeddings(path: Path, embeddings: list[np.ndarray], file_names: list[str], backend) -> Path:
    """Reference embeddings of the accepted photos, with how to compare them (metric and threshold)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dim = len(embeddings[0]) if embeddings else 0
    np.savez(
        path,
        embeddings=np.stack(embeddings).astype(np.float32) if embeddings else np.zeros((0, dim), np.float32),
        file_names=np.array(file_names, dtype=str),
        backend=np.array(backend.name),
        metric=np.array(backend.metric),
        threshold=np.array(float(backend.threshold)),
    )
    return path


def accepted_originals(workspace, subject_id: str) -> list[Path]:
    """The subject's own photos that intake accepted (the originals folder also keeps rejected uploads).

    Later stages that need "real photos of this person" (likeness references, the blind test) use these.
    """
    metadata = workspace.dataset_dir(subject_id) / METADATA
    if not metadata.is_file():
        return []
    rows = [json.loads(line) for line in metadata.read_text().splitlines() if line.strip()]
    paths = dict.fromkeys(
        workspace.subject_dir(subject_id) / row["source"] for row in rows if row.get("source")
    )
    return [path for path in paths if path.is_file()]


def holdout_photos(workspace, subject_id: str) -> list[Path]:
    """The subject's held-out photos (intake's ``holdout=N``): never trained on; the evaluation's unseen real
    photos."""
    folder = workspace.holdout_dir(subject_id)  # written only by intake: byte copies of accepted originals
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def read_references(intake_dir: Path) -> dict | None:
    """The subject's reference embeddings as intake wrote them, or None when there are none yet.

    Train (validation likeness) and evaluate read them here, so all stages agree on the file and its keys.
    """
    path = Path(intake_dir) / EMBEDDINGS
    if not path.is_file():
        return None
    references = load_embeddings(path)
    return references if len(references["embeddings"]) else None


def load_embeddings(path: Path) -> dict:
    with np.load(path) as data:
        return {
            "embeddings": data["embeddings"],
            "file_names": [str(n) for n in data["file_names"]],
            "backend": str(data["backend"]),
            "metric": str(data["metric"]),
            "threshold": float(data["threshold"]),
        }
