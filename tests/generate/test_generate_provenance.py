"""Provenance: parameters in PNG chunks, the IPTC AI mark in XMP, pixel-identical regeneration, LoRA loading."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.generate import (
    DIGITAL_SOURCE_TYPE,
    GenerateConfig,
    read_provenance,
    regenerate,
    run_generate,
)
from workbench.generate.engine import build_engine
from workbench.generate.provenance import digital_source_type, xmp_packet
from workbench.workspace.loras import resolve_lora

FAST = {"steps": 2, "resolution": 64, "batch_size": 2}


def _pixels(image_or_path) -> np.ndarray:
    image = Image.open(image_or_path) if not isinstance(image_or_path, Image.Image) else image_or_path
    return np.asarray(image.convert("RGB"))


def test_png_carries_parameters_and_ai_mark(workspace, subject, tiny_lora):
    config = GenerateConfig(lora=str(tiny_lora), lora_scale=0.8, presets=["low-key"], count=1, **FAST)
    path = run_generate(subject, config, workspace=workspace).images[0]
    with Image.open(path) as image:
        chunks = dict(image.text)
    assert {"workbench:generation", "parameters", "XML:com.adobe.xmp", "Software"} <= set(chunks)
    found = read_provenance(path)
    params = found["parameters"]
    assert found["ai_generated"] and found["digital_source_type"] == DIGITAL_SOURCE_TYPE
    assert params["model"] == "tiny" and params["lora"].endswith("pytorch_lora_weights.safetensors")
    assert len(params["lora_sha256"]) == 64 and params["lora_scale"] == 0.8
    assert params["prompt"].startswith("professional headshot photo of ohwx woman")
    assert (params["steps"], params["width"], params["height"], params["seed"]) == (2, 64, 64, 0)
    assert "Negative prompt:" in found["parameters_text"] and "Seed: 0" in found["parameters_text"]
    assert found["watermark_checked"] is False  # invisible-watermark is not installed here


def test_mark_survives_a_jpeg_that_keeps_xmp_and_not_one_that_strips_it(workspace, subject):
    config = GenerateConfig(presets=["office"], count=1, **FAST)
    path = run_generate(subject, config, workspace=workspace).images[0]
    xmp = read_provenance(path)["xmp"]
    kept, stripped = workspace.root / "kept.jpg", workspace.root / "stripped.jpg"
    Image.open(path).convert("RGB").save(kept, quality=90, xmp=xmp.encode())
    Image.open(path).convert("RGB").save(stripped, quality=90)
    assert read_provenance(kept)["ai_generated"] is True
    assert read_provenance(stripped)["ai_generated"] is False
    # The element form of the property (some tools write it that way) is read too.
    element = (
        xmp_packet("x")
        .replace(f'    Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"\n', "")
        .replace(
            "<dc:description>",
            f"<Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType><dc:description>",
        )
    )
    assert digital_source_type(element) == DIGITAL_SOURCE_TYPE


@pytest.mark.parametrize(
    ("model", "lora_fixture", "scheduler"),
    [("tiny", "tiny_lora", "euler-a"), ("tiny-sdxl", "tiny_sdxl_lora", None)],
)
def test_metadata_regenerates_the_identical_image(
    model, lora_fixture, scheduler, request, workspace, subject, face_files
):
    lora = request.getfixturevalue(lora_fixture)
    config = GenerateConfig(
        model=model, lora=str(lora), lora_scale=0.7, presets=["butterfly", "high-key"], count=3,
        scheduler=scheduler, controls=[f"landmarks:{face_files['astronaut']}:0.9:0:0.9"], **FAST,
    )  # fmt: skip
    result = run_generate(subject, config, workspace=workspace)
    for record in result.records[1:]:  # the second image of a batch of two, and a batch of one
        path = result.out_dir / record.file
        assert np.array_equal(_pixels(regenerate(path, workspace)), _pixels(path))


def test_lora_changes_the_output_and_scale_zero_is_the_base_model(workspace, subject, tiny_lora):
    def draw(**kw) -> np.ndarray:
        engine = build_engine(GenerateConfig(**FAST, **kw), workspace)
        return np.asarray(
            engine.run("a photo", "", [1], steps=2, guidance_scale=5.0, scheduler=None)[0], dtype=int
        )

    base, with_lora = draw(), draw(lora=str(tiny_lora))
    assert np.abs(base - with_lora).mean() > 1.0
    assert np.abs(base - draw(lora=str(tiny_lora), lora_scale=0.0)).max() <= 1


def test_speed_path_runs_on_cpu_and_matches_the_plain_path(workspace, subject, tiny_lora):
    """The GPU switches (fused LoRA + QKV, channels_last, VAE slicing/tiling) change float rounding only."""
    plain = build_engine(GenerateConfig(lora=str(tiny_lora), **FAST), workspace)
    fast = build_engine(
        GenerateConfig(lora=str(tiny_lora), fuse_qkv=True, channels_last=True, vae_slicing=True,
                       vae_tiling=True, **FAST),
        workspace,
    )  # fmt: skip
    assert fast.speed["lora_fused"] and fast.speed["fuse_qkv"] and fast.speed["channels_last"]
    a, b = (np.asarray(e.run("a photo", "", [0, 1], steps=2, guidance_scale=5.0, scheduler=None)[1], dtype=int)
            for e in (plain, fast))  # fmt: skip
    assert np.abs(a - b).max() <= 3


def test_lora_sources(workspace, tiny_lora, tmp_path):
    file = tiny_lora / "pytorch_lora_weights.safetensors"
    assert resolve_lora(str(tiny_lora)) == file.resolve() == resolve_lora(str(file))
    with pytest.raises(WorkbenchError, match="not found"):
        resolve_lora(str(tmp_path / "missing"))
    from workbench.tracking import configure_tracking

    configure_tracking(workspace)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(file), artifact_path="lora")
    fetched = resolve_lora(f"mlflow:{run.info.run_id}", workspace)
    assert fetched.read_bytes() == file.read_bytes()


def test_regenerate_refuses_an_image_without_parameters(workspace, tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    assert read_provenance(path)["ai_generated"] is False
    with pytest.raises(WorkbenchError, match="no workbench generation parameters"):
        regenerate(path, workspace)


def test_a_workspace_lora_is_recorded_relative_and_regenerates(workspace, subject, tiny_lora):
    import shutil

    inside = workspace.lora_dir(subject, "train-copied")  # a LoRA where training puts it
    shutil.copytree(tiny_lora, inside)
    config = GenerateConfig(lora=str(inside), presets=["low-key"], count=1, **FAST)
    path = run_generate(subject, config, workspace=workspace).images[0]
    params = read_provenance(path)["parameters"]
    assert params["lora"] == f"subjects/{subject}/loras/train-copied/pytorch_lora_weights.safetensors"
    assert np.array_equal(_pixels(regenerate(path, workspace)), _pixels(path))
