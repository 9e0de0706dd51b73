"""The training data: the intake dataset (aligned crops + metadata.jsonl), prompts, face masks, class images.

The intake stage writes ``subjects/<id>/dataset/`` as a Hugging Face imagefolder: one ``metadata.jsonl`` line per
crop with ``file_name``, ``text`` (a caption holding the identifier token), ``face_box`` ``[x0, y0, x1, y1]`` and
``landmarks`` / ``landmarks5`` (``[[x, y], ...]``), all in the crop's pixels. DreamBooth sets hold 5-30 photos,
so everything is read into memory once; there is no DataLoader (see ``trainer.batch_indices`` for why).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from workbench.errors import WorkbenchError

METADATA = "metadata.jsonl"
# Words that can't be an identifier token when we look for the one word every caption shares.
_COMMON = {
    "a", "an", "the", "of", "photo", "portrait", "picture", "headshot", "image", "close", "up", "closeup",
    "person", "man", "woman", "boy", "girl", "face", "in", "with", "and", "on", "at", "professional",
}  # fmt: skip


@dataclass
class Example:
    image: np.ndarray  # (H, W, 3) uint8, already at training resolution
    caption: str | None
    face_box: tuple[float, float, float, float] | None  # in the pixels of ``image``
    landmarks: np.ndarray | None  # (N, 2) in the pixels of ``image``


def read_dataset(dataset_dir: Path, resolution: int) -> list[Example]:
    """Read every crop listed in ``metadata.jsonl``, resized to ``resolution`` with its geometry scaled along."""
    path = Path(dataset_dir) / METADATA
    if not path.is_file():
        raise WorkbenchError(
            f"No training set at {dataset_dir} (missing {METADATA}): run `workbench intake --subject ID PHOTOS...` "
            "first; it writes the aligned crops and their captions there."
        )
    examples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            image_path = Path(dataset_dir) / record["file_name"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise WorkbenchError(
                f"{path} line {number} is not a valid record ({exc}); re-run intake."
            ) from None
        if not image_path.is_file():
            raise WorkbenchError(
                f"{path} line {number} names {image_path.name}, which is missing; re-run intake."
            )
        examples.append(_example(Image.open(image_path), record, resolution))
    if not examples:
        raise WorkbenchError(f"The training set at {dataset_dir} is empty: intake accepted no photo.")
    return examples


def _example(image: Image.Image, record: dict[str, Any], resolution: int) -> Example:
    image = image.convert("RGB")
    # Intake crops are square at the model's resolution; centre-crop anything else rather than distort a face.
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    scale = resolution / side
    image = image.crop((left, top, left + side, top + side)).resize((resolution, resolution), Image.BICUBIC)

    def geometry(values: Any) -> np.ndarray | None:
        if values is None:
            return None
        points = np.asarray(values, dtype=np.float32).reshape(-1, 2)
        return (points - [left, top]) * scale

    box = geometry(record.get("face_box"))
    landmarks = geometry(record.get("landmarks"))
    if landmarks is None:
        landmarks = geometry(record.get("landmarks5"))
    return Example(
        image=np.asarray(image, dtype=np.uint8),
        caption=record.get("text"),
        face_box=tuple(box.reshape(-1).tolist()) if box is not None else None,
        landmarks=landmarks,
    )


def subject_identity(
    subject: dict[str, Any], examples: list[Example], token: str | None, class_word: str | None
):
    """The identifier token and class word: the config, else subject.json, else what every caption shares."""
    token = token or _first(subject, "token", "identifier_token", "instance_token")
    class_word = class_word or _first(subject, "class_word", "class_noun", "class") or "person"
    if token is None:
        shared = set.intersection(
            *(set((e.caption or "").lower().replace(",", " ").split()) for e in examples)
        )
        candidates = sorted(shared - _COMMON - {class_word.lower()})
        if len(candidates) == 1:
            token = candidates[0]
    if not token:
        raise WorkbenchError(
            "No identifier token for this subject: subject.json has none and the captions share no single rare "
            "word. Pass one, e.g. `workbench train ... instance_token=ohwx`."
        )
    return token, class_word


def _first(record: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if record.get(key):
            return str(record[key])
    return None


def instance_prompts(examples: list[Example], template: str | None, token: str, class_word: str) -> list[str]:
    """One prompt per example: the template when given, else its caption (which must hold the token)."""
    if template:
        prompt = template.format(token=token, class_word=class_word)
        return [prompt] * len(examples)
    prompts = []
    for example in examples:
        caption = example.caption or ""
        # A caption without the token would teach the model nothing about *this* person.
        prompts.append(caption if token.lower() in caption.lower() else f"a photo of {token} {class_word}")
    return prompts


def face_mask(example: Example, size: int) -> np.ndarray:
    """A soft (size, size) mask in [0, 1]: an ellipse around the face box joined with the landmarks' hull."""
    import cv2

    mask = np.zeros((size, size), dtype=np.float32)
    factor = size / example.image.shape[0]
    if example.face_box is not None:
        x0, y0, x1, y1 = (v * factor for v in example.face_box)
        # The detector's box stops at the brows; grow it 15% (more upward) to keep forehead and hairline.
        center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2 - 0.05 * (y1 - y0))))
        axes = (max(1, int(round(0.575 * (x1 - x0)))), max(1, int(round(0.65 * (y1 - y0)))))
        cv2.ellipse(mask, center, axes, 0, 0, 360, 1.0, -1)
    if example.landmarks is not None and len(example.landmarks) >= 3:
        hull = cv2.convexHull(np.round(example.landmarks * factor).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1.0)
    sigma = max(0.5, size / 64)
    return cv2.GaussianBlur(mask, (0, 0), sigma) if mask.any() else mask


def loss_weights(examples: list[Example], latent_size: int, face_weight: float) -> torch.Tensor | None:
    """Per-pixel loss weights at latent resolution, normalised to mean 1 so the LR keeps its meaning."""
    if face_weight == 1.0:
        return None
    masks = torch.from_numpy(np.stack([face_mask(e, latent_size) for e in examples]))[:, None]
    weights = 1.0 + (face_weight - 1.0) * masks
    return weights / weights.mean(dim=(1, 2, 3), keepdim=True)


def to_pixels(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HWC images -> a float (N, 3, H, W) tensor in [-1, 1], the VAE's input range."""
    array = np.stack(images).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def ensure_class_images(
    cache_dir: Path,
    model_key: str,
    prompt: str,
    count: int,
    resolution: int,
    generate: Callable[[int], Image.Image],
) -> list[np.ndarray]:
    """Class images for prior preservation, generated once per (model, prompt, count, resolution) and cached.

    ``generate(i)`` makes image ``i`` (seeded by ``i``, so a cache rebuilt anywhere holds the same images).
    The folder is written under a temporary name and renamed, so a crash never leaves a partial cache.
    """
    key = hashlib.sha256(json.dumps([model_key, prompt, count, resolution]).encode()).hexdigest()[:20]
    folder = Path(cache_dir) / "class-images" / key
    if not (folder / "done.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
            for i in range(count):
                generate(i).convert("RGB").resize((resolution, resolution)).save(Path(tmp) / f"{i:05d}.png")
            info = {"model": model_key, "prompt": prompt, "count": count, "resolution": resolution}
            (Path(tmp) / "done.json").write_text(json.dumps(info, indent=2))
            staging = Path(tmp) / "ready"
            staging.mkdir()
            for file in list(Path(tmp).iterdir()):
                if file != staging:
                    shutil.move(str(file), staging / file.name)
            try:
                staging.rename(folder)
            except OSError:  # another process finished first
                if not (folder / "done.json").is_file():
                    raise
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
