"""UnivFD (Ojha, Li & Lee, CVPR 2023): a linear head on frozen CLIP ViT-L/14 image features.

Checked against the authors' repository (github.com/WisconsinAIVision/UniversalFakeDetect, MIT):

* the feature is ``CLIP.encode_image`` of OpenAI's ViT-L/14 -- the **projected** image embedding (768-d:
  the class token after ``ln_post``, times ``proj``), not the 1024-d pooled output. In transformers that is
  ``CLIPVisionModelWithProjection(...).image_embeds`` of ``openai/clip-vit-large-patch14``;
* the head is ``nn.Linear(768, 1)``, released as ``pretrained_weights/fc_weights.pth`` (a state dict with
  ``weight`` (1, 768) and ``bias`` (1,), saved from a GPU, so it is loaded with ``map_location="cpu"``);
* evaluation preprocessing is ``CenterCrop(224)`` **without resizing**, then CLIP's mean/std; the output is
  ``sigmoid(logit)``, > 0.5 = fake.

Two plug-ins share the backbone: ``univfd`` scores with the published head (nothing fitted here), ``clip``
gives the same 768-d features to the cross-validated probe (the UnivFD recipe, trained on these images).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.evaluate.detectors.base import (
    Detector,
    DetectorInfo,
    hash_files,
    load_state_dict,
    resolve_local,
    sha256_file,
    weights_files,
)  # fmt: skip
from workbench.faces import as_rgb_uint8

CLIP_HUB_ID = "openai/clip-vit-large-patch14"
UNIVFD_SOURCE = (
    "Ojha, Li & Lee, 'Towards Universal Fake Image Detectors that Generalize Across Generative Models', "
    "CVPR 2023; https://github.com/WisconsinAIVision/UniversalFakeDetect"
)
UNIVFD_HEAD_URL = "https://github.com/WisconsinAIVision/UniversalFakeDetect/tree/main/pretrained_weights"
CLIP_LICENCE = "CLIP backbone: OpenAI, released with github.com/openai/CLIP (MIT; see its model card)"
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HEAD_NAMES = ("fc_weights.safetensors", "fc_weights.pth")


def load_clip_backbone(spec: str, device: str = "cpu") -> tuple[Any, Path]:
    """``CLIPVisionModelWithProjection`` from a local folder or a cached hub id, and that folder."""
    from transformers import CLIPVisionModelWithProjection

    folder = resolve_local(spec, what="CLIP", alternative="use detector: spectral", hub_id=CLIP_HUB_ID)
    try:
        model = CLIPVisionModelWithProjection.from_pretrained(str(folder), local_files_only=True)
    except OSError as exc:
        raise ModelNotAvailableError(
            f"CLIP folder {folder} cannot be loaded ({exc}): run `hf download {CLIP_HUB_ID}` again, or pass "
            "a folder saved with save_pretrained."
        ) from None
    return model.to(device).eval(), folder


def clip_inputs(crops: list[np.ndarray], size: int) -> Any:
    """UnivFD's evaluation transform: a ``size`` px centre crop (no resize), in [0, 1], CLIP-normalised."""
    import torch

    batch = []
    for crop in crops:
        crop = as_rgb_uint8(crop)
        h, w = crop.shape[:2]
        if min(h, w) < size:
            raise WorkbenchError(
                f"UnivFD reads a {size} px centre crop without resizing (as its authors evaluate), but a "
                f"crop is {w}x{h}: make the content-matched crops at least {size} px (size={size})."
            )
        # torchvision's CenterCrop offsets: int(round((h - size) / 2)).
        top, left = int(round((h - size) / 2)), int(round((w - size) / 2))
        batch.append(crop[top : top + size, left : left + size])
    x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def clip_image_embeds(model: Any, crops: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """CLIP's projected image embedding (``encode_image`` in OpenAI's code), one row per crop."""
    import torch

    size = int(model.config.image_size)
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(crops), batch_size):
        x = clip_inputs(crops[start : start + batch_size], size).to(device)
        with torch.inference_mode():
            out.append(model(pixel_values=x).image_embeds.float().cpu().numpy())
    return np.concatenate(out)


class ClipProbe(Detector):
    """Kind ``probe``: CLIP ViT image embeddings (UnivFD's feature) for the cross-validated linear probe."""

    def __init__(self, clip_model: str = CLIP_HUB_ID, device: str = "cpu") -> None:
        self.model, folder = load_clip_backbone(clip_model, device)
        files = weights_files(folder)
        self.info = DetectorInfo(
            name="clip", kind="probe", source=f"UnivFD features ({UNIVFD_SOURCE}), linear probe fitted here",
            licence=CLIP_LICENCE, input_size=int(self.model.config.image_size),
            weights=str(files[0]), sha256=hash_files(files), extra={"backbone": clip_model},
        )  # fmt: skip

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        return clip_image_embeds(self.model, crops)


def _head_file(weights: str | None) -> Path:
    missing = (
        f"UnivFD needs its published linear head: download fc_weights.pth from {UNIVFD_HEAD_URL} (MIT) and "
        f"pass its path as detector_weights; its CLIP backbone comes from `hf download {CLIP_HUB_ID}`."
    )
    if not weights:
        raise ModelNotAvailableError(missing)
    path = Path(weights).expanduser()
    if path.is_dir():
        found = [path / n for n in HEAD_NAMES if (path / n).is_file()]
        if not found:
            raise ModelNotAvailableError(f"{path} holds no {' or '.join(HEAD_NAMES)}. {missing}")
        path = found[0]
    if not path.is_file():
        raise ModelNotAvailableError(f"UnivFD head '{weights}' does not exist. {missing}")
    return path


class UnivFD(Detector):
    """Kind ``pretrained``: the published UnivFD head on CLIP's projected image embedding; returns logits."""

    def __init__(self, weights: str | None, clip_model: str = CLIP_HUB_ID, device: str = "cpu") -> None:
        import torch

        head_path = _head_file(weights)
        state = {k.removeprefix("fc."): v for k, v in load_state_dict(head_path).items()}
        self.model, folder = load_clip_backbone(clip_model, device)
        dim = int(self.model.config.projection_dim)
        if set(state) != {"weight", "bias"} or tuple(state["weight"].shape) != (1, dim):
            shapes = {k: tuple(v.shape) for k, v in state.items()}
            raise WorkbenchError(
                f"{head_path.name} is not a UnivFD head for this CLIP (has {shapes}; needs weight (1, {dim}) "
                "and bias (1,)): the published head expects ViT-L/14's 768-d projected embedding."
            )
        self.weight = state["weight"].float().to(device)
        self.bias = state["bias"].float().to(device)
        files = weights_files(folder)
        self.info = DetectorInfo(
            name="univfd", kind="pretrained", source=UNIVFD_SOURCE, licence=f"head: MIT; {CLIP_LICENCE}",
            input_size=int(self.model.config.image_size), weights=str(head_path),
            sha256=sha256_file(head_path),
            extra={"backbone": clip_model, "backbone_weights": str(files[0]),
                   "backbone_sha256": hash_files(files), "threshold": "logit 0 (sigmoid 0.5), as published"},
        )  # fmt: skip
        self._torch = torch

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        embeds = self._torch.from_numpy(clip_image_embeds(self.model, crops)).to(self.weight.device)
        return (embeds @ self.weight.T + self.bias).squeeze(1).cpu().numpy()
