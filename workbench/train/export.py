"""Write the trained adapter in standard formats.

- diffusers: ``pytorch_lora_weights.safetensors``, written by the pipeline class's own ``save_lora_weights``
  from peft's state dict, so stock ``pipe.load_lora_weights(folder)`` loads it (LoRA config in the metadata,
  so an alpha other than the rank survives the round trip);
- kohya: ``<name>.safetensors`` with ``lora_unet_*`` / ``lora_te*_*`` keys and ``.alpha`` tensors, the format
  ComfyUI, AUTOMATIC1111, SD.Next and InvokeAI read;
- pivotal tuning: ``<name>_emb.safetensors`` with ``clip_l`` (and ``clip_g`` for SDXL) rows for the new tokens,
  the layout diffusers' advanced DreamBooth script writes; load it with ``pipe.load_textual_inversion``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from workbench.models import pipeline_class
from workbench.workspace.loras import WEIGHTS


def peft_layers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA tensors of a peft-wrapped model, with diffusers' key names."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    # The base vocabulary is never trained (pivotal rows are saved separately): skip peft's hub lookup for it.
    return convert_state_dict_to_diffusers(get_peft_model_state_dict(model, save_embedding_layers=False))


def _metadata(model: torch.nn.Module) -> dict[str, Any]:
    config = model.peft_config["default"].to_dict()
    return {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}


def save_diffusers_lora(
    out_dir: Path, family: str, unet: torch.nn.Module, text_encoders: dict[str, torch.nn.Module]
) -> Path:
    """Save the UNet LoRA (and text-encoder LoRA when given) where ``load_lora_weights(out_dir)`` finds it."""
    kwargs: dict[str, Any] = {
        "unet_lora_layers": peft_layers(unet),
        "unet_lora_adapter_metadata": _metadata(unet),
    }
    for name, encoder in text_encoders.items():  # "text_encoder", "text_encoder_2"
        kwargs[f"{name}_lora_layers"] = peft_layers(encoder)
        kwargs[f"{name}_lora_adapter_metadata"] = _metadata(encoder)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline_class(family).save_lora_weights(out_dir, weight_name=WEIGHTS, **kwargs)
    return out_dir / WEIGHTS


def export_kohya(diffusers_file: Path, out_file: Path, family: str, alpha: float) -> Path:
    """Convert a diffusers LoRA file to kohya keys (``lora_unet_down_blocks_0_..lora_down.weight`` + alpha)."""
    from diffusers.utils import convert_all_state_dict_to_peft, convert_state_dict_to_kohya

    kohya = convert_state_dict_to_kohya(convert_all_state_dict_to_peft(load_file(diffusers_file)))
    fixed = {}
    for key, value in kohya.items():
        if family == "sd15":  # kohya names SD 1.5's single text encoder lora_te, SDXL's two lora_te1/lora_te2
            key = key.replace("lora_te1_", "lora_te_")
        # diffusers writes alpha = rank; ours may differ, and the scale is alpha / rank.
        fixed[key] = torch.tensor(float(alpha)) if key.endswith(".alpha") else value.contiguous()
    save_file(
        fixed, out_file, metadata={"ss_network_module": "networks.lora", "ss_network_alpha": str(alpha)}
    )
    return out_file


def save_embeddings(out_file: Path, embeddings: dict[str, torch.Tensor], tokens: list[str]) -> Path:
    """New token embeddings of pivotal tuning: ``clip_l`` (text_encoder) and ``clip_g`` (text_encoder_2)."""
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in embeddings.items()}
    save_file(tensors, out_file, metadata={"tokens": json.dumps(tokens)})
    return out_file


def load_embeddings_into(pipe: Any, emb_file: Path) -> list[str]:
    """Add the new tokens of a pivotal-tuning file to a stock pipeline (both encoders for SDXL)."""
    from safetensors import safe_open

    with safe_open(str(emb_file), "pt") as handle:
        tokens = json.loads(handle.metadata()["tokens"])
    state = load_file(emb_file)
    pipe.load_textual_inversion(
        state["clip_l"], token=tokens, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
    )
    if "clip_g" in state:
        pipe.load_textual_inversion(
            state["clip_g"], token=tokens, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
        )
    return tokens
