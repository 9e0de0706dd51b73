"""The whole stage on both tiny shapes: tracked run, validation, exports that stock diffusers loads, registry."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from workbench.models import resolve_model
from workbench.train import run_train
from workbench.train.export import load_embeddings_into


def _images(pipe, prompt: str) -> np.ndarray:
    out = pipe(prompt, num_inference_steps=2, guidance_scale=1.0, generator=torch.Generator().manual_seed(0),
               height=64, width=64, output_type="np")  # fmt: skip
    return out.images[0]


def test_tiny_sd15_run_is_tracked_exported_and_loadable(workspace, subject, make_config):
    from diffusers import StableDiffusionPipeline

    config = make_config(
        "tiny", "max_train_steps=12", "learning_rate=1e-2", "validation_steps=6", "face_loss_weight=2"
    )
    result = run_train(subject, config, workspace=workspace)

    run = mlflow.MlflowClient().get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert {"loss", "lr", "step_time_s", "val_faces_found"} <= set(run.data.metrics)
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "loss")
    assert [m.step for m in history] == list(range(1, 13))
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "validation")}
    assert artifacts == {"validation/step-000006.png", "validation/step-000012.png"}
    lora_artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "lora")}
    assert "lora/pytorch_lora_weights.safetensors" in lora_artifacts
    version = mlflow.MlflowClient().get_model_version(subject, result.model_version)
    assert version.run_id == result.run_id and version.source.endswith("/lora")

    # A fresh, stock diffusers pipeline loads the LoRA, and it changes what the pipeline draws.
    folder = resolve_model("tiny", workspace.cache_dir).location
    pipe = StableDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    before = _images(pipe, "a photo of ohwx woman")
    pipe.load_lora_weights(result.out_dir)
    after = _images(pipe, "a photo of ohwx woman")
    assert np.abs(after - before).max() > 1e-3

    kohya = load_file(result.kohya_file)
    assert any(k.startswith("lora_unet_") and k.endswith(".lora_down.weight") for k in kohya)
    assert all(float(v) == 4.0 for k, v in kohya.items() if k.endswith(".alpha"))
    summary = json.loads((workspace.lora_dir(subject, result.run_name) / "summary.json").read_text())
    assert summary["steps"] == 12


def test_tiny_sdxl_pivotal_text_encoder_and_prior(workspace, subject, make_config):
    from diffusers import StableDiffusionXLPipeline

    config = make_config(
        "tiny-sdxl", "max_train_steps=6", "learning_rate=1e-2", "text_encoder_lr=1e-2", "pivotal_tuning=true",
        "train_text_encoder=true", "with_prior_preservation=true", "num_class_images=2", "class_inference_steps=2",
        "noise_offset=0.05", "gradient_checkpointing=true", "register_model=false", "lora_alpha=8",
    )  # fmt: skip
    result = run_train(subject, config, workspace=workspace)
    assert result.embeddings_file and result.model_version is None
    cached = [json.loads(p.read_text()) for p in (workspace.cache_dir / "class-images").glob("*/done.json")]
    assert any("tiny-sdxl" in c["model"] and c["count"] == 2 for c in cached)  # generated once, cached by key

    folder = resolve_model("tiny-sdxl", workspace.cache_dir).location
    pipe = StableDiffusionXLPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    tokens = load_embeddings_into(pipe, result.embeddings_file)
    assert tokens == ["<s0>", "<s1>"]
    before = _images(pipe, "a photo of <s0><s1> woman")
    pipe.load_lora_weights(result.out_dir)
    after = _images(pipe, "a photo of <s0><s1> woman")
    assert np.abs(after - before).max() > 1e-3
    weights = load_file(result.lora_file)
    assert any(k.startswith("text_encoder.") for k in weights) and any(
        k.startswith("text_encoder_2.") for k in weights
    )
    kohya = load_file(result.kohya_file)
    assert any(k.startswith("lora_te1_") for k in kohya) and any(k.startswith("lora_te2_") for k in kohya)
    assert all(float(v) == 8.0 for k, v in kohya.items() if k.endswith(".alpha"))


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_uncached_latents_match_the_cached_path(workspace, subject, make_config, model):
    """cache_latents only moves the VAE call: the trained LoRA is the same (CPU, fp32)."""
    cached = run_train(
        subject, make_config(model, "max_train_steps=3", "register_model=false"), workspace=workspace
    )
    fresh = run_train(
        subject,
        make_config(model, "max_train_steps=3", "register_model=false", "cache_latents=false"),
        workspace=workspace,
    )
    a, b = load_file(cached.lora_file), load_file(fresh.lora_file)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
