"""Validation while training: fixed-seed samples from fixed prompts, scored for likeness to the subject.

Samples use their own seeded generators inside ``torch.random.fork_rng``, so validating never moves the
training RNG (a resumed run stays bit-identical whether or not it validated). Likeness is the face backend's
distance between each sample's largest face and the subject's reference embeddings from intake. Random-weight
models draw no faces: then only the count of faces found (0) is logged, and nothing fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    images: list[Image.Image]
    grid: Image.Image
    metrics: dict[str, float]


def load_references(intake_dir: Path) -> dict | None:
    """The subject's reference embeddings from intake (with the backend that made them), or None."""
    from workbench.intake.dataset import read_references

    return read_references(intake_dir)


def image_grid(images: list[Image.Image], columns: int | None = None) -> Image.Image:
    columns = columns or len(images)
    rows = -(-len(images) // columns)
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height), "white")
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * width, (i // columns) * height))
    return grid


def likeness(images: list[Image.Image], references: dict | None, backend_name: str) -> dict[str, float]:
    """faces_found always; face_distance (median to the references, as the evaluation suite scores it) and
    same_person_rate when faces were found.

    The references' own backend is used when there are references: embeddings of different backends live in
    different spaces and cannot be compared.
    """
    from workbench.faces import compare, get_backend, same_person

    if references is not None and references["backend"] != backend_name:
        log.info("validation likeness uses %s, the backend of the intake embeddings", references["backend"])
        backend_name = references["backend"]
    try:
        backend = get_backend(backend_name)
    except (WorkbenchError, ImportError) as exc:
        log.warning("validation likeness skipped: %s", exc)
        return {}
    distances = []
    found = 0
    for image in images:
        array = np.asarray(image.convert("RGB"))
        faces = backend.detect(array)
        if not faces:
            continue
        found += 1
        if references is not None:
            embedding = backend.embed(array, faces[0])
            refs = references["embeddings"]
            distances.append(float(np.median([compare(embedding, r, backend.metric) for r in refs])))
    metrics = {"faces_found": float(found)}
    if distances:
        metrics["face_distance"] = float(np.mean(distances))
        metrics["same_person_rate"] = float(np.mean([same_person(d, backend) for d in distances]))
    return metrics


def sample(
    pipe: Any, prompts: list[str], *, seed: int, steps: int, guidance: float, resolution: int
) -> list[Image.Image]:
    images = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for i, prompt in enumerate(prompts):
            generator = torch.Generator("cpu").manual_seed(seed + i)
            out = pipe(
                prompt, num_inference_steps=steps, guidance_scale=guidance, generator=generator,
                height=resolution, width=resolution,
            )  # fmt: skip
            images.append(out.images[0])
    return images


def run_validation(
    pipe: Any,
    prompts: list[str],
    *,
    seed: int,
    steps: int,
    guidance: float,
    resolution: int,
    references: np.ndarray | None,
    backend: str,
) -> ValidationResult:
    images = sample(pipe, prompts, seed=seed, steps=steps, guidance=guidance, resolution=resolution)
    return ValidationResult(images, image_grid(images), likeness(images, references, backend))
