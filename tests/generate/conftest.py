"""Fixtures of the generate tests: a subject, tiny LoRAs made here with peft, real face references on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.workspace import Workspace


@pytest.fixture
def subject(workspace: Workspace) -> str:
    workspace.write_subject("alice", token="ohwx", class_word="woman")
    return "alice"


def _make_lora(spec: str, cache: Path, folder: Path) -> Path:
    """A peft LoRA on the tiny UNet with random non-zero weights, saved the way stock diffusers saves one."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from workbench.models import load_component, pipeline_class, resolve_model

    source = resolve_model(spec, cache)
    unet = load_component(source, "unet")
    torch.manual_seed(7)
    config = LoraConfig(
        r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
    )
    unet.add_adapter(config)
    with torch.no_grad():  # init_lora_weights=False leaves B random too; make the effect clearly visible
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    pipeline_class(source.family).save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(unet))
    return folder


@pytest.fixture(scope="session")
def tiny_lora(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_lora("tiny", model_cache, tmp_path_factory.mktemp("lora-sd15"))


@pytest.fixture(scope="session")
def tiny_sdxl_lora(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_lora("tiny-sdxl", model_cache, tmp_path_factory.mktemp("lora-sdxl"))


@pytest.fixture(scope="session")
def face_files(
    astronaut: np.ndarray, grace_hopper: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The packaged real faces as files, the way a user passes a reference photo."""
    folder = tmp_path_factory.mktemp("faces")
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(grace_hopper).save(folder / "grace_hopper.jpg", quality=95)
    return {"astronaut": folder / "astronaut.png", "grace_hopper": folder / "grace_hopper.jpg"}
