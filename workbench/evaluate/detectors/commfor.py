"""Community Forensics (Park & Owens, CVPR 2025): a ViT-S/16 trained on images of thousands of generators.

Checked against the authors' repository (github.com/JeongsooP/Community-Forensics, MIT) and the hub layout of
``OwensLab/commfor-model-384`` (MIT):

* the model is ``models.ViTClassifier``: timm's ``vit_small_patch16_384.augreg_in21k_ft_in1k`` (or the
  224 / ViT-Ti variants) held as ``self.vit``, its ``head`` replaced by ``nn.Linear(384, 1)``; one logit,
  > 0 = fake;
* the hub folder is a ``PyTorchModelHubMixin`` save: ``config.json`` (``model_size``, ``input_size``,
  ``patch_size``, ``freeze_backbone``, ``device``) and ``model.safetensors`` whose keys are timm's names
  prefixed ``vit.`` (the Dropbox ``.pt`` holds the same under ``model``, sometimes prefixed ``_orig_mod.``);
* test preprocessing (``dataloader.get_transform``): ``Resize(440)`` (shorter side, bilinear) then
  ``CenterCrop(384)`` -- 256 / 224 for the 224 model -- then ImageNet mean/std.

timm must not be installed here (it breaks torch/transformers on the CPU machines), so the network is
transformers' ``ViTForImageClassification`` with timm's settings (LayerNorm eps 1e-6, exact GELU, qkv bias,
class-token pooling after the final norm), and the released tensors are renamed once by
:func:`timm_to_transformers` -- the documented mapping below, loaded with ``strict=True`` so that any key a
future transformers renames fails loudly instead of leaving a layer random.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.evaluate.detectors.base import (
    Detector,
    DetectorInfo,
    load_state_dict,
    resolve_local,
    sha256_file,
)
from workbench.faces import as_rgb_uint8

COMMFOR_HUB_ID = "OwensLab/commfor-model-384"
COMMFOR_SOURCE = (
    "Park & Owens, 'Community Forensics: Using Thousands of Generators to Train Fake Image Detectors', "
    "CVPR 2025; https://github.com/JeongsooP/Community-Forensics; "
    "weights https://huggingface.co/OwensLab/commfor-model-384"
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# dataloader.determine_resize_crop_sizes: the published test resize for each input size.
RESIZE_FOR_INPUT = {224: 256, 384: 440}
# Attention heads of the timm architectures ViTClassifier builds (shapes give everything else).
HEADS_FOR_SIZE = {"small": 6, "tiny": 3}

# Released (timm) name -> transformers name; ``{i}`` is the block index. ``attn.qkv`` is split in three.
KEY_MAP = {
    "cls_token": "vit.embeddings.cls_token",
    "pos_embed": "vit.embeddings.position_embeddings",
    "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
    "blocks.{i}.norm1": "vit.layers.{i}.layernorm_before",
    "blocks.{i}.attn.proj": "vit.layers.{i}.attention.o_proj",
    "blocks.{i}.norm2": "vit.layers.{i}.layernorm_after",
    "blocks.{i}.mlp.fc1": "vit.layers.{i}.mlp.fc1",
    "blocks.{i}.mlp.fc2": "vit.layers.{i}.mlp.fc2",
    "norm": "vit.layernorm",
    "head": "classifier",
}


def _released_tensors(path: Path) -> dict[str, Any]:
    state = load_state_dict(path)
    if isinstance(state.get("model"), dict):  # the Dropbox training checkpoint
        state = state["model"]
    state = {k.removeprefix("_orig_mod."): v for k, v in state.items()}
    return {k.removeprefix("vit."): v for k, v in state.items()}


def timm_to_transformers(state: dict[str, Any], depth: int) -> dict[str, Any]:
    """Rename timm ViT tensors (``vit.`` prefix removed) to transformers' ViTForImageClassification names."""
    out: dict[str, Any] = {}
    for i in range(depth):
        qkv_w, qkv_b = state[f"blocks.{i}.attn.qkv.weight"], state[f"blocks.{i}.attn.qkv.bias"]
        dim = qkv_w.shape[1]
        # timm reshapes the fused output as (3, heads, head_dim): rows [0:D] are q, [D:2D] k, [2D:3D] v.
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            out[f"vit.layers.{i}.attention.{name}.weight"] = qkv_w[j * dim : (j + 1) * dim]
            out[f"vit.layers.{i}.attention.{name}.bias"] = qkv_b[j * dim : (j + 1) * dim]
    for released, ours in KEY_MAP.items():
        for i in range(depth) if "{i}" in released else [None]:
            src, dst = (released.format(i=i), ours.format(i=i)) if i is not None else (released, ours)
            if src in state:  # a parameter itself (cls_token, pos_embed, ...)
                out[dst] = state[src]
            for suffix in ("weight", "bias"):
                if f"{src}.{suffix}" in state:
                    out[f"{dst}.{suffix}"] = state[f"{src}.{suffix}"]
    return out


def _config(folder: Path | None) -> dict[str, Any]:
    file = folder / "config.json" if folder else None
    if file is None or not file.is_file():  # a bare weights file: the published 384 model's settings
        return {"model_size": "small", "input_size": 384, "patch_size": 16}
    return json.loads(file.read_text())


def _vit_config(state: dict[str, Any], config: dict[str, Any]):
    """Architecture from the tensors' shapes; attention heads from ``num_heads`` or the published table."""
    from transformers import ViTConfig

    try:
        hidden = int(state["cls_token"].shape[-1])
        patch = int(state["patch_embed.proj.weight"].shape[-1])
        tokens = int(state["pos_embed"].shape[1]) - 1
        depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
        mlp = int(state["blocks.0.mlp.fc1.weight"].shape[0])
    except KeyError as exc:
        raise WorkbenchError(
            f"These weights lack {exc} and are not a Community Forensics ViT: use the published "
            "model.safetensors."
        ) from None
    heads = config.get("num_heads") or HEADS_FOR_SIZE.get(str(config.get("model_size")))
    image = int(round(tokens**0.5)) * patch
    if not heads or hidden % int(heads) or image != int(config.get("input_size", image)):
        raise WorkbenchError(
            f"config.json (model_size={config.get('model_size')}, input_size={config.get('input_size')}) "
            f"does not match the weights (width {hidden}, {image} px): use the config.json published "
            "with them."
        )
    return ViTConfig(
        hidden_size=hidden, num_hidden_layers=depth, num_attention_heads=int(heads), intermediate_size=mlp,
        image_size=image, patch_size=patch, num_labels=1, layer_norm_eps=1e-6, hidden_act="gelu",
        qkv_bias=True,
    )  # fmt: skip


class CommunityForensics(Detector):
    """Kind ``pretrained``: the published Community Forensics ViT; returns its logit per crop."""

    def __init__(self, weights: str | None = None, device: str = "cpu") -> None:
        import torch
        from transformers import ViTForImageClassification

        spec = weights or COMMFOR_HUB_ID
        path = resolve_local(
            spec, what="Community Forensics", alternative="use detector: spectral", hub_id=COMMFOR_HUB_ID
        )
        folder, file = (path, path / "model.safetensors") if path.is_dir() else (path.parent, path)
        if not file.is_file():
            raise WorkbenchError(
                f"{folder} has no model.safetensors: run `hf download {COMMFOR_HUB_ID}` again."
            )
        config = _config(folder)
        released = _released_tensors(file)
        vit_config = _vit_config(released, config)
        self.model = ViTForImageClassification(vit_config).eval()
        result = self.model.load_state_dict(
            timm_to_transformers(released, vit_config.num_hidden_layers), strict=False
        )
        if result.missing_keys or result.unexpected_keys:
            raise WorkbenchError(
                f"{file.name} does not fit the ViT (missing {result.missing_keys[:3]}, unexpected "
                f"{result.unexpected_keys[:3]}): use the published weights, or update the key map for this "
                "transformers version."
            )
        self.model.to(device)
        self.input_size = vit_config.image_size
        self.resize = RESIZE_FOR_INPUT.get(self.input_size, round(self.input_size * 440 / 384))
        self.info = DetectorInfo(
            name="commfor", kind="pretrained", source=COMMFOR_SOURCE, licence="MIT (code and weights)",
            input_size=self.resize, weights=str(file), sha256=sha256_file(file),
            extra={"hub_id_or_path": spec, "model_size": config.get("model_size"),
                   "input_size": self.input_size, "threshold": "logit 0 (sigmoid 0.5), as published"},
        )  # fmt: skip
        self._torch = torch

    def preprocess(self, crops: list[np.ndarray]) -> Any:
        """``Resize(shorter side -> 440, bilinear)``, ``CenterCrop(384)``, ImageNet mean/std, with PIL as
        torchvision does for PIL images."""
        from PIL import Image

        torch, out = self._torch, []
        for crop in crops:
            image = Image.fromarray(as_rgb_uint8(crop))
            w, h = image.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.resize * long / short)
            size = (self.resize, new_long) if w <= h else (new_long, self.resize)
            if (w, h) != size:
                image = image.resize(size, Image.BILINEAR)
            w, h = image.size
            top, left = int(round((h - self.input_size) / 2)), int(round((w - self.input_size) / 2))
            out.append(np.asarray(image)[top : top + self.input_size, left : left + self.input_size])
        x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
        return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
            1, 3, 1, 1
        )

    def __call__(self, crops: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(crops), batch_size):
            x = self.preprocess(crops[start : start + batch_size]).to(device)
            with self._torch.inference_mode():
                out.append(self.model(pixel_values=x).logits[:, 0].float().cpu().numpy())
        return np.concatenate(out)
