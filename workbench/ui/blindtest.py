"""The blind "real or AI?" test: sampling items, storing answers. Scoring belongs to the evaluation suite.

Two modes, as in the perception studies of AI faces:

* ``single``: one image at a time, "real photo or AI?" (yes/no task; d' = z(hits) - z(false alarms)).
* ``2afc``: a real photo and a generated image side by side, "which one is AI?" (two-alternative forced choice).

Every item is copied to a neutral file name and re-encoded as a plain PNG, centre-cropped and resized to one
size, so neither the file name, the metadata (our generated PNGs carry their parameters and an AI-made mark),
nor the resolution gives the answer away. Answers go to ``subjects/<id>/blindtest/answers.jsonl``, one JSON
object per answer in the format :mod:`workbench.evaluate.human` scores: ``participant``, ``item``, ``truth``,
``answer``, ``mode`` ("single"|"2afc") and ``timestamp``. ``truth`` and ``answer`` are "real"|"ai" for a
single image and, in 2AFC, the position of the AI image ("left"|"right").
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

Mode = Literal["single", "2afc"]
Truth = Literal["real", "ai", "left", "right"]
MODES: tuple[Mode, ...] = ("single", "2afc")
DISPLAY_SIZE = 384  # one size for every item: resolution must not be the tell


@dataclass(frozen=True)
class BlindItem:
    item: str  # stable id of the item within the test
    mode: Mode
    images: tuple[str, ...]  # one image (single) or (left, right) (2afc), neutral file names
    truth: Truth  # "real"/"ai" for the single image; in 2afc where the AI image is, "left"/"right"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BlindItem:
        return cls(data["item"], data["mode"], tuple(data["images"]), data["truth"])


def blindtest_dir(workspace: Workspace, subject_id: str) -> Path:
    # Inside the subject's folder: `workbench forget` erases the answers (participants' names) with the faces.
    return workspace.subject_path(subject_id, "blindtest")


def answers_path(workspace: Workspace, subject_id: str) -> Path:
    return blindtest_dir(workspace, subject_id) / "answers.jsonl"


def real_photos(workspace: Workspace, subject_id: str) -> list[Path]:
    """The subject's own photos that intake accepted (rejected uploads may show someone else)."""
    from workbench.intake import accepted_originals

    return accepted_originals(workspace, subject_id)


def generated_images(workspace: Workspace, subject_id: str) -> list[Path]:
    """Every image that a generation run of the subject recorded in its manifest (as evaluation reads them)."""
    from workbench.workspace.generations import generation_runs

    return [path for run in generation_runs(workspace, subject_id) for path in run.images()]


def build_items(
    workspace: Workspace, subject_id: str, mode: Mode, n_items: int, *, seed: int | None = None
) -> list[BlindItem]:
    """Sample ``n_items`` items mixing the subject's real photos with generated ones, half of each truth.

    Real and generated images are drawn with replacement only when there are fewer than needed.
    """
    if mode not in MODES:
        raise WorkbenchError(f"Blind-test mode {mode!r} is not one of {', '.join(MODES)}.")
    if n_items < 1:
        raise WorkbenchError("Choose at least 1 blind-test item.")
    real, fake = real_photos(workspace, subject_id), generated_images(workspace, subject_id)
    if not real:
        raise WorkbenchError(
            f"Subject '{subject_id}' has no accepted photos: upload some on the Subject tab until at least one is accepted."
        )
    if not fake:
        raise WorkbenchError(
            f"Subject '{subject_id}' has no generated images yet: generate some on the Generate tab first."
        )
    rng = np.random.default_rng(seed)
    session = secrets.token_hex(4)
    out_dir = blindtest_dir(workspace, subject_id) / "items" / session
    out_dir.mkdir(parents=True, exist_ok=True)
    n_real = n_items // 2 + (int(rng.integers(2)) if n_items % 2 and mode == "single" else 0)
    # single: half the items are real photos; 2afc: the AI image is on the left in half the pairs.
    truths: list[str] = ["real"] * n_real + ["ai"] * (n_items - n_real)
    rng.shuffle(truths)
    real_pick, fake_pick = _draw(rng, real, n_items), _draw(rng, fake, n_items)
    items = []
    for i, truth in enumerate(truths):
        item_id = f"{session}-{i:03d}"
        if mode == "single":
            source = real_pick[i] if truth == "real" else fake_pick[i]
            images = (_neutral_copy(source, out_dir / f"{item_id}.png"),)
        else:
            ai_left = truth == "ai"
            pair = (fake_pick[i], real_pick[i]) if ai_left else (real_pick[i], fake_pick[i])
            images = tuple(
                _neutral_copy(src, out_dir / f"{item_id}-{side}.png")
                for src, side in zip(pair, "ab", strict=True)
            )
            truth = "left" if ai_left else "right"
        items.append(BlindItem(item_id, mode, tuple(str(p) for p in images), truth))
    return items


def _draw(rng: np.random.Generator, pool: list[Path], n: int) -> list[Path]:
    order = list(rng.permutation(len(pool)))
    while len(order) < n:
        order += list(rng.permutation(len(pool)))
    return [pool[i] for i in order[:n]]


def _neutral_copy(source: Path, target: Path) -> Path:
    """Centre square, one size, plain RGB PNG without any metadata."""
    from workbench.evaluate.analyse import load_image  # decodes HEIC and colour profiles like intake

    image = ImageOps.fit(
        Image.fromarray(load_image(source)), (DISPLAY_SIZE, DISPLAY_SIZE), Image.Resampling.LANCZOS
    )
    image.save(target, format="PNG")  # a fresh image from an array carries no info chunks
    return target


def record_answer(
    workspace: Workspace, subject_id: str, participant: str, item: BlindItem, answer: Truth
) -> dict:
    """Append one answer to the subject's answers file and return the stored record."""
    participant = (participant or "").strip()
    if not participant:
        raise WorkbenchError(
            "Type a participant name or code first, so the answers can be scored per person."
        )
    allowed = ("real", "ai") if item.mode == "single" else ("left", "right")
    if answer not in allowed:
        raise WorkbenchError(
            f"Answer {answer!r} must be {' or '.join(map(repr, allowed))} in {item.mode} mode."
        )
    record = {
        "participant": participant,
        "item": item.item,
        "truth": item.truth,
        "answer": answer,
        "mode": item.mode,
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }
    path = answers_path(workspace, subject_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:  # one short line per write: appends from two sessions do not interleave
        handle.write(json.dumps(record) + "\n")
    return record


def read_answers(path: Path, participant: str | None = None) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if participant is None or r.get("participant") == participant]
