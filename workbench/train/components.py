"""The models a run trains: loading, LoRA adapters, pivotal-tuning tokens, and prompt encoding for both shapes.

SD 1.5 conditions the UNet on the last hidden state of one CLIP text encoder. SDXL concatenates the
penultimate hidden states of two encoders (768 + 1280 = 2048 channels), and also feeds the pooled projection
of the second encoder plus six "added time ids" (original size, crop top-left, target size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.models import ModelSource, load_component
from workbench.train.config import TrainConfig


@dataclass
class Components:
    family: str
    unet: Any
    vae: Any
    noise_scheduler: Any
    sample_scheduler: Any  # the base model's own sampler, used for validation and class images
    tokenizers: list[Any]
    text_encoders: list[Any]
    new_tokens: list[str] = field(default_factory=list)  # pivotal tuning: "<s0>", "<s1>", ...

    @property
    def is_sdxl(self) -> bool:
        return self.family == "sdxl"


def load_components(source: ModelSource, weight_dtype: torch.dtype, vae_dtype: torch.dtype) -> Components:
    import diffusers

    names = ["text_encoder", "text_encoder_2"] if source.family == "sdxl" else ["text_encoder"]
    base_scheduler = load_component(source, "scheduler")
    sampler_class = getattr(diffusers, base_scheduler.config.get("_class_name", "DDIMScheduler"), None)
    components = Components(
        family=source.family,
        unet=load_component(source, "unet", torch_dtype=weight_dtype),
        vae=load_component(source, "vae", torch_dtype=vae_dtype),
        # Training always uses DDPM's forward process; the sampler class does not matter for it.
        noise_scheduler=diffusers.DDPMScheduler.from_config(base_scheduler.config),
        sample_scheduler=(sampler_class or diffusers.DDIMScheduler).from_config(base_scheduler.config),
        tokenizers=[load_component(source, n.replace("text_encoder", "tokenizer")) for n in names],
        text_encoders=[load_component(source, n, torch_dtype=weight_dtype) for n in names],
    )
    for module in (components.unet, components.vae, *components.text_encoders):
        module.requires_grad_(False)
    return components


def add_unet_lora(unet: Any, config: TrainConfig) -> None:
    _add_lora(unet, config, config.target_modules)


def add_text_encoder_lora(encoder: Any, config: TrainConfig) -> None:
    _add_lora(encoder, config, config.text_encoder_target_modules)


def _add_lora(module: Any, config: TrainConfig, target_modules: list[str]) -> None:
    from peft import LoraConfig

    lora = LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.lora_dropout,
        init_lora_weights="gaussian", target_modules=list(target_modules),
    )  # fmt: skip
    module.add_adapter(lora)


class NewTokenEmbedding(nn.Module):
    """A frozen token embedding plus a small trainable table for tokens added after it (pivotal tuning).

    Only the new rows are parameters, so the optimizer state and the checkpoint hold a few KB instead of a
    copy of the 49,408-row table, and the original vocabulary cannot drift.
    """

    def __init__(self, base: nn.Embedding, new: torch.Tensor):
        super().__init__()
        self.base = base
        self.base_vocab = base.num_embeddings
        self.new = nn.Parameter(new.to(torch.float32))

    @property
    def weight(self) -> torch.Tensor:  # transformers reads .weight of the input embeddings in a few places
        return self.base.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        is_new = ids >= self.base_vocab
        out = self.base(ids.clamp(max=self.base_vocab - 1))
        if is_new.any():
            rows = self.new[(ids - self.base_vocab).clamp(min=0)].to(out.dtype)
            out = torch.where(is_new[..., None], rows, out)
        return out


def add_pivotal_tokens(components: Components, count: int, seed: int) -> list[str]:
    """Add ``<s0>``..``<s{count-1}>`` to every tokenizer, with trainable embeddings in every text encoder."""
    tokens = [f"<s{i}>" for i in range(count)]
    generator = torch.Generator().manual_seed(seed)
    for tokenizer, encoder in zip(components.tokenizers, components.text_encoders, strict=True):
        tokenizer.add_tokens(tokens)
        base = encoder.get_input_embeddings()
        if len(tokenizer) != base.num_embeddings + count:
            raise RuntimeError("pivotal tokens must come right after the base vocabulary")
        # Start at the scale of real token embeddings (diffusers' advanced DreamBooth script does the same).
        std = base.weight.float().std().item()
        new = torch.randn(count, base.embedding_dim, generator=generator) * std
        encoder.set_input_embeddings(NewTokenEmbedding(base, new))
    components.new_tokens = tokens
    return tokens


def new_token_embeddings(components: Components) -> dict[str, torch.Tensor]:
    """``clip_l`` (and ``clip_g``) rows of the pivotal tokens, in the advanced DreamBooth script's layout."""
    keys = ["clip_l", "clip_g"]
    return {
        key: encoder.get_input_embeddings().new.detach()
        for key, encoder in zip(keys, components.text_encoders, strict=False)
    }


def tokenize(components: Components, prompts: list[str]) -> list[torch.Tensor]:
    return [
        tok(
            prompts,
            padding="max_length",
            max_length=tok.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        for tok in components.tokenizers
    ]


def encode_prompts(
    components: Components, encoders: list[Any], ids: list[torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hidden states for cross-attention, pooled embedding or None), the way each pipeline encodes prompts."""
    if not components.is_sdxl:
        return encoders[0](ids[0].to(device))[0], None
    hidden, pooled = [], None
    for encoder, token_ids in zip(encoders, ids, strict=True):
        out = encoder(token_ids.to(device), output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        pooled = out[0]  # the last encoder's pooled projection (text_embeds) is what SDXL uses
    return torch.cat(hidden, dim=-1), pooled


def sdxl_time_ids(resolution: int, batch: int, device: torch.device) -> torch.Tensor:
    """Intake crops are square at the training size: original = target = (res, res), crop at (0, 0)."""
    ids = torch.tensor([resolution, resolution, 0, 0, resolution, resolution], dtype=torch.float32)
    return ids.repeat(batch, 1).to(device)


def build_pipeline(components: Components, unet: Any, text_encoders: list[Any], dtype: torch.dtype) -> Any:
    """A pipeline over the training components (no reload), for validation and class images."""
    from workbench.models import pipeline_class

    parts: dict[str, Any] = {
        "vae": components.vae, "unet": unet, "scheduler": components.sample_scheduler,
        "text_encoder": text_encoders[0], "tokenizer": components.tokenizers[0],
    }  # fmt: skip
    if components.is_sdxl:
        parts.update(text_encoder_2=text_encoders[1], tokenizer_2=components.tokenizers[1])
    else:
        parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = pipeline_class(components.family)(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe
