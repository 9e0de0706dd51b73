"""What a suite evaluates: one :class:`Item` per image, with its role and metadata.

Three roles, the same in subject mode and in a test set's ``metadata.jsonl`` (docs/testsets.md):

* ``reference`` -- the subject's own photos, the ones training saw: likeness and skin shifts are measured
  against them.
* ``holdout`` -- real photos of the subject that training never saw. They are neither measured nor compared
  against as references: the copy-paste check asks whether an output is closer to one training photo than to
  these, and the detector's real side is made of them (content-matched to the outputs), never of training
  photos.
* ``output`` -- what is judged: generated images, or a test set's other rows (``variant``, ``ai``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from workbench.errors import WorkbenchError
from workbench.evaluate.analyse import list_images, load_image
from workbench.workspace.generations import GenerationRun

Role = Literal["reference", "holdout", "output"]


@dataclass
class Item:
    """One image to evaluate: where it is, its metadata and its role."""

    id: str
    load: Any  # () -> np.ndarray
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    role: Role = "output"

    @property
    def reference(self) -> bool:
        return self.role == "reference"

    @property
    def holdout(self) -> bool:
        return self.role == "holdout"

    @property
    def output(self) -> bool:
        return self.role == "output"


def items_from_folder(
    images: Path, subject: str | None, references: list[Path], holdout: list[Path] | None = None
) -> list[Item]:
    """A generation run (its manifest) or a plain folder of images, plus the subject's references and holdout."""
    sid = subject or "subject"
    outputs = _generation_items(images, subject) or [
        Item(f"output/{p.relative_to(images)}", _loader(p), p, {"subject_id": sid})
        for p in list_images(images)
    ]
    if not outputs:
        raise WorkbenchError(
            f"No images in {images}: point --images at a generation run or a folder of PNG/JPEG."
        )
    refs = [Item(f"reference/{p.name}", _loader(p), p, {"subject_id": sid}, "reference") for p in references]
    held = [Item(f"holdout/{p.name}", _loader(p), p, {"subject_id": sid}, "holdout") for p in holdout or []]
    return refs + held + outputs


def _generation_items(run_dir: Path, subject: str | None) -> list[Item]:
    """The images a generation run recorded in its manifest (never its contact sheet), with their presets."""
    items = []
    for record in GenerationRun(run_dir).records():  # the producer's reader: torn lines, resumed indices
        path = run_dir / record.file
        if path.is_file():
            meta = {
                "subject_id": subject or "subject",
                "preset": "+".join(record.presets),
                "seed": record.seed,
            }
            items.append(Item(f"output/{record.file}", _loader(path), path, meta))
    return items


def row_role(meta: dict[str, Any]) -> Role:
    """A test-set row's role: ``reference`` and ``holdout`` as written, everything else is judged."""
    role = str(meta.get("role") or "")
    return role if role in ("reference", "holdout") else "output"  # type: ignore[return-value]


def items_from_dataset(ds) -> list[Item]:
    items = []
    columns = [c for c in ds.column_names if c != "image"]
    for i in range(len(ds)):
        row = ds[i]
        meta = {c: row[c] for c in columns}
        meta.setdefault("subject_id", f"row{i}")
        path = getattr(row["image"], "filename", None)
        items.append(Item(Path(path).name if path else f"row{i:05d}", _row_loader(row), Path(path) if path else None,
                          meta, row_role(meta)))  # fmt: skip
    return items


def _row_loader(row):
    return lambda: np.asarray(row["image"].convert("RGB"))


def _loader(path: Path):
    return lambda: load_image(path)
