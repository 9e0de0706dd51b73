"""The ``tiny`` presets: Stable Diffusion pipelines with random weights, built from JSON configs in the package.

They have the real architecture's *shape* (SD 1.5: one text encoder; SDXL: two text encoders, pooled
projection and added time ids) at a few hundred thousand parameters, so every code path runs offline on a CPU
in seconds. Weights are seeded, so every process builds identical models. The built pipeline is saved once as
a stock diffusers folder in the workspace cache, which anyone can load with ``DiffusionPipeline.from_pretrained``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from workbench.models.families import pipeline_class
from workbench.models.tokenizer import build_clip_tokenizer

TINY_PRESETS = {"tiny": "tiny-sd15", "tiny-sd15": "tiny-sd15", "tiny-sdxl": "tiny-sdxl"}


def _config_dir(name: str) -> Path:
    return Path(str(resources.files("workbench.models") / "configs" / name))


def _read(name: str, component: str) -> dict[str, Any]:
    data = json.loads((_config_dir(name) / f"{component}.json").read_text())
    data.pop("_class_name", None)
    return data


def tiny_info(name: str) -> dict[str, Any]:
    return json.loads((_config_dir(TINY_PRESETS[name]) / "model.json").read_text())


def config_fingerprint(name: str) -> str:
    """Changes whenever a shipped config changes, so a stale cached build is rebuilt."""
    digest = hashlib.sha256()
    for path in sorted(_config_dir(name).glob("*.json")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def build_tiny_components(name: str, tokenizer_dir: Path) -> dict[str, Any]:
    """Instantiate every component of a tiny pipeline with seeded random weights."""
    info = json.loads((_config_dir(name) / "model.json").read_text())
    torch.manual_seed(info["seed"])
    components: dict[str, Any] = {
        "unet": UNet2DConditionModel(**_read(name, "unet")),
        "vae": AutoencoderKL(**_read(name, "vae")),
        "scheduler": DDIMScheduler(**_read(name, "scheduler")),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**_read(name, "text_encoder"))),
        "tokenizer": build_clip_tokenizer(tokenizer_dir),
    }
    if info["family"] == "sdxl":
        components["text_encoder_2"] = CLIPTextModelWithProjection(
            CLIPTextConfig(**_read(name, "text_encoder_2"))
        )
        # SDXL's second tokenizer pads with "!" (id 0), unlike SD 1.5's.
        components["tokenizer_2"] = build_clip_tokenizer(tokenizer_dir, pad_token="!")
    else:
        components.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return components


def ensure_tiny_pipeline(preset: str, cache_dir: Path) -> Path:
    """Build the tiny pipeline once and save it as a diffusers folder; returns that folder."""
    name = TINY_PRESETS[preset]
    target = cache_dir / "models" / f"{name}-{config_fingerprint(name)}"
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temporary folder and rename, so a crash never leaves a half-written model behind.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        components = build_tiny_components(name, Path(tmp) / "tokenizer-src")
        pipe = pipeline_class(json.loads((_config_dir(name) / "model.json").read_text())["family"])(
            **components
        )
        staging = Path(tmp) / "pipeline"
        pipe.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            if not (target / "model_index.json").is_file():
                raise
    shutil.rmtree(target.parent / "tokenizer-src", ignore_errors=True)
    return target


# -- tiny IP-Adapters (tuning-free identity) ---------------------------------------------------------------------
TINY_IP_ADAPTER = "tiny-ip-adapter"


def build_tiny_image_encoder() -> Any:
    """A seeded tiny ``CLIPVisionModelWithProjection`` and its ``CLIPImageProcessor`` (plus-face style adapters)."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    info = json.loads((_config_dir(TINY_IP_ADAPTER) / "model.json").read_text())
    config = _read(TINY_IP_ADAPTER, "image_encoder")
    torch.manual_seed(info["seed"])
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**config)).eval()
    size = config["image_size"]
    return encoder, CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )


def build_tiny_ip_adapter(kind: str, unet: Any) -> dict[str, dict[str, torch.Tensor]]:
    """A random IP-Adapter state dict ``{"image_proj": ..., "ip_adapter": ...}`` for ``unet``'s shape.

    ``kind`` is ``ip-adapter-face`` (plain projection of CLIP image embeds) or ``ip-adapter-faceid`` (projection
    of a face-recognition embedding). The ``ip_adapter`` keys are ``"{i}.to_k_ip.weight"`` / ``"{i}.to_v_ip.weight"``
    with ``i`` the position of each cross-attention (``attn2``) processor in ``unet.attn_processors`` order, shaped
    (hidden size of its block, cross-attention dim), exactly as ``load_ip_adapter`` reads the published files.
    """
    info = json.loads((_config_dir(TINY_IP_ADAPTER) / "model.json").read_text())
    spec = _read(TINY_IP_ADAPTER, kind)
    cross = int(unet.config.cross_attention_dim)
    generator = torch.Generator("cpu").manual_seed(info["seed"])

    def rand(*shape: int) -> torch.Tensor:
        # Larger than default init on purpose: a random adapter must visibly steer the tiny UNet in tests.
        return torch.randn(*shape, generator=generator) * info["weight_std"]

    tokens = spec["num_tokens"]
    if kind == "ip-adapter-face":
        embed_dim = _read(TINY_IP_ADAPTER, "image_encoder")["projection_dim"]
        image_proj = {"proj.weight": rand(tokens * cross, embed_dim), "proj.bias": rand(tokens * cross),
                      "norm.weight": torch.ones(cross), "norm.bias": torch.zeros(cross)}  # fmt: skip
    elif kind == "ip-adapter-faceid":
        id_dim, hidden = spec["id_embed_dim"], spec["id_embed_dim"] * spec["mult"]
        image_proj = {"proj.0.weight": rand(hidden, id_dim), "proj.0.bias": rand(hidden),
                      "proj.2.weight": rand(tokens * cross, hidden), "proj.2.bias": rand(tokens * cross),
                      "norm.weight": torch.ones(cross), "norm.bias": torch.zeros(cross)}  # fmt: skip
    else:
        raise ValueError(f"no tiny IP-Adapter of kind {kind!r}")
    ip_adapter = {}
    for index, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            hidden_size = _block_width(unet, name)
            ip_adapter[f"{index}.to_k_ip.weight"] = rand(hidden_size, cross)
            ip_adapter[f"{index}.to_v_ip.weight"] = rand(hidden_size, cross)
    return {"image_proj": image_proj, "ip_adapter": ip_adapter}


def _block_width(unet: Any, processor_name: str) -> int:
    """The channel width of the block a processor sits in (diffusers' own rule in ``_convert_ip_adapter_attn``)."""
    widths = list(unet.config.block_out_channels)
    if processor_name.startswith("mid_block"):
        return widths[-1]
    block = int(processor_name.split(".")[1])
    return list(reversed(widths))[block] if processor_name.startswith("up_blocks") else widths[block]
