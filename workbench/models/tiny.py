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
