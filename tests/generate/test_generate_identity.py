"""Tuning-free identity (IP-Adapter face / FaceID) on the tiny SD 1.5 and SDXL shapes, through stock diffusers."""

from __future__ import annotations

import hashlib
import time

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image

from workbench.errors import ModelNotAvailableError, WorkbenchError
from workbench.generate import GenerateConfig, read_provenance, regenerate, run_generate
from workbench.generate.engine import build_engine
from workbench.intake import IntakeConfig, run_intake

FAST = {"steps": 2, "resolution": 64, "batch_size": 2}
METHODS = ("ip-adapter-face", "ip-adapter-faceid")


@pytest.fixture
def selfie_subject(workspace, face_files) -> str:
    """One real selfie through intake: the aligned crop and its dlib 128-d embedding are the references."""
    result = run_intake(
        "alice", IntakeConfig(resolution=64), workspace=workspace, photos=[face_files["astronaut"]]
    )
    assert result.n_accepted == 1
    return "alice"


def _draw(workspace, subject, **kw) -> np.ndarray:
    engine = build_engine(GenerateConfig(**FAST, **kw), workspace, subject=subject)
    return np.asarray(
        engine.run("a photo", "", [1, 2], steps=2, guidance_scale=5.0, scheduler=None)[1], dtype=int
    )


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
@pytest.mark.parametrize("method", METHODS)
def test_adapter_changes_the_image_and_scale_zero_is_the_base_model(model, method, workspace, selfie_subject):
    base = _draw(workspace, selfie_subject, model=model)
    adapted = _draw(workspace, selfie_subject, model=model, identity=method, ip_adapter_scale=1.0)
    assert np.abs(base - adapted).mean() > 1.0
    off = _draw(workspace, selfie_subject, model=model, identity=method, ip_adapter_scale=0.0)
    assert np.array_equal(base, off)


@pytest.mark.parametrize(
    ("model", "method"),
    [
        ("tiny", "ip-adapter-faceid"),
        ("tiny-sdxl", "ip-adapter-face"),
        ("tiny", "ip-adapter-face"),
        ("tiny-sdxl", "ip-adapter-faceid"),
    ],
)
def test_with_controlnet_provenance_names_method_adapter_references_and_regenerates(
    model, method, workspace, selfie_subject, face_files
):
    config = GenerateConfig(
        model=model, identity=method, presets=["corporate", "high-key"], count=3,
        controls=[f"landmarks:{face_files['astronaut']}:0.8"], **FAST,
    )  # fmt: skip
    result = run_generate(selfie_subject, config, workspace=workspace)
    photo_sha = hashlib.sha256(face_files["astronaut"].read_bytes()).hexdigest()
    crop = workspace.dataset_dir(selfie_subject) / "000.png"
    for record in result.records:
        identity = read_provenance(result.out_dir / record.file)["parameters"]["identity"]
        assert identity["method"] == method and identity["adapter"] == f"tiny:{method}"
        assert len(identity["adapter_sha256"]) == 64
        assert identity["references"] == [
            {
                "crop": "000.png",
                "source_sha256": photo_sha,
                "crop_sha256": hashlib.sha256(crop.read_bytes()).hexdigest(),
            }
        ]
        assert record.params["controls"][0]["type"] == "landmarks"
    params = mlflow.get_run(result.run_id).data.params
    assert params["identity.method"] == method and params["identity.references"] == "000.png"
    assert params["identity"] == method and float(params["ip_adapter_scale"]) == 0.7
    for record in result.records[1:]:  # the second image of a batched call, and a call of one
        path = result.out_dir / record.file
        assert np.array_equal(
            np.asarray(regenerate(path, workspace)), np.asarray(Image.open(path).convert("RGB"))
        )


def test_lora_default_is_unchanged_and_recorded(workspace, subject, tiny_lora):
    config = GenerateConfig(lora=str(tiny_lora), count=1, **FAST)
    assert config.identity == "auto" and config.identity_method == "lora"
    result = run_generate(subject, config, workspace=workspace)
    assert result.records[0].params["identity"]["method"] == "lora"
    assert mlflow.get_run(result.run_id).data.params["identity.method"] == "lora"
    assert GenerateConfig().identity_method == "none"


def test_config_refuses_mixed_or_incomplete_identities(tiny_lora):
    with pytest.raises(WorkbenchError, match="identity=lora needs a LoRA"):
        GenerateConfig(identity="lora")
    with pytest.raises(WorkbenchError, match="takes no LoRA"):
        GenerateConfig(identity="ip-adapter-face", lora=str(tiny_lora))
    with pytest.raises(WorkbenchError, match="ip_adapter_scale"):
        GenerateConfig(identity="ip-adapter-face", ip_adapter_scale=-1)


@pytest.mark.parametrize(
    ("method", "command"),
    [("ip-adapter-faceid", "hf download h94/IP-Adapter-FaceID ip-adapter-faceid_sd15.bin"),
     ("ip-adapter-face", "hf download h94/IP-Adapter models/ip-adapter-plus-face_sd15.safetensors")],
)  # fmt: skip
def test_missing_published_adapter_fails_at_once_with_the_download_command(
    method, command, workspace, selfie_subject
):
    started = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match=command.replace(".", r"\.")):
        build_engine(GenerateConfig(identity=method, ip_adapter="h94/" + command.split("h94/")[1].split()[0],
                                    **FAST), workspace, subject=selfie_subject)  # fmt: skip
    assert time.perf_counter() - started < 30


def test_published_faceid_size_asks_for_insightface(workspace, selfie_subject, tmp_path):
    """A local FaceID file made for ArcFace 512-d is loaded by the real file path and refused with the fix."""
    from safetensors.torch import save_file

    flat = {"image_proj.proj.0.weight": torch.zeros(1024, 512), "image_proj.norm.weight": torch.ones(32)}
    save_file(flat, tmp_path / "ip-adapter-faceid_sd15.safetensors")
    with pytest.raises(WorkbenchError, match="512-d face embeddings.*insightface"):
        build_engine(GenerateConfig(identity="ip-adapter-faceid", ip_adapter=str(tmp_path),
                                    ip_adapter_weight="ip-adapter-faceid_sd15.safetensors", **FAST),
                     workspace, subject=selfie_subject)  # fmt: skip


def test_tuning_free_needs_an_intake(workspace, subject):
    with pytest.raises(WorkbenchError, match="no accepted photos"):
        build_engine(GenerateConfig(identity="ip-adapter-faceid", **FAST), workspace, subject=subject)
