"""ControlNet: conditioning images from the real faces that ship in packages, single and multi nets, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.errors import MissingDependencyError, ModelNotAvailableError, WorkbenchError
from workbench.generate import GenerateConfig, list_poses, parse_control, render_pose, run_generate
from workbench.generate.controlnet import (
    canny_image,
    conditioning_image,
    controlnet_source,
    landmarks_image,
    load_controlnet,
    parse_model_overrides,
)
from workbench.generate.engine import build_engine

FAST = {"steps": 2, "resolution": 64, "batch_size": 2}


def _lit(image: Image.Image) -> float:
    return float((np.asarray(image).max(-1) > 0).mean())


def test_parse_control(face_files):
    spec = parse_control(f"canny:{face_files['astronaut']}:0.6:0.1:0.7")
    assert (spec.type, spec.scale, spec.start, spec.end) == ("canny", 0.6, 0.1, 0.7)
    pose = parse_control("landmarks:pose:three-quarter-left:0.8")
    assert (pose.reference, pose.scale, pose.end) == ("pose:three-quarter-left", 0.8, 1.0)
    for bad, message in [
        ("sketch:x.png", "TYPE:REFERENCE"),
        ("canny:/no/such.png", "does not exist"),
        ("landmarks:pose:profile", "no pose"),
        ("canny:pose:front", "landmark drawings"),
        (f"canny:{face_files['astronaut']}:1:0.8:0.2", "start < end"),
    ]:
        with pytest.raises(WorkbenchError, match=message):
            parse_control(bad)
    assert parse_model_overrides(["canny=tiny"]) == {"canny": "tiny"}
    with pytest.raises(WorkbenchError, match="TYPE=SOURCE"):
        parse_model_overrides(["canny"])


def test_pose_gallery_renders_distinct_directions():
    assert {"front", "three-quarter-left", "three-quarter-right", "tilt-left", "tilt-right"} <= set(
        list_poses()
    )
    front, left, right = (
        np.asarray(render_pose(n, 256)) for n in ["front", "three-quarter-left", "three-quarter-right"]
    )
    assert 0.005 < _lit(Image.fromarray(front)) < 0.2
    # Turning left moves the nose tip (white, drawn last among white parts) left of the front pose's, and vice versa.
    from workbench.generate import load_pose

    assert (
        load_pose("three-quarter-left")[30, 0]
        < load_pose("front")[30, 0]
        < load_pose("three-quarter-right")[30, 0]
    )
    assert not np.array_equal(left, right)


@pytest.mark.parametrize("face", ["astronaut", "grace_hopper"])
def test_landmark_and_canny_conditioning_from_real_faces(face: str, face_files):
    drawing = landmarks_image(str(face_files[face]), 256)
    assert drawing.size == (256, 256) and 0.002 < _lit(drawing) < 0.2
    edges = canny_image(str(face_files[face]), 256)
    assert edges.size == (256, 256) and _lit(edges) > 0.01


def test_landmarks_without_a_face_says_so(tmp_path):
    path = tmp_path / "flat.png"
    Image.new("RGB", (256, 256), (120, 130, 140)).save(path)
    with pytest.raises(WorkbenchError, match="No face found"):
        landmarks_image(str(path), 64)


def test_depth_without_estimator_weights_names_them(face_files):
    spec = parse_control(f"depth:{face_files['astronaut']}")
    with pytest.raises(ModelNotAvailableError, match="Depth-Anything-V2-Small-hf"):
        conditioning_image(spec, 64, "depth-anything/Depth-Anything-V2-Small-hf")


def test_openpose_without_controlnet_aux_says_what_to_install(face_files):
    spec = parse_control(f"openpose:{face_files['astronaut']}")
    with pytest.raises(MissingDependencyError, match="controlnet-aux"):
        conditioning_image(spec, 64, "unused")


def test_missing_controlnet_weights_name_the_hub_id():
    import torch

    assert controlnet_source("canny", "sd15", {}, model_is_tiny=False) == "lllyasviel/control_v11p_sd15_canny"
    with pytest.raises(WorkbenchError, match="landmarks=HUB_ID_OR_FOLDER"):
        controlnet_source("landmarks", "sdxl", {}, model_is_tiny=False)
    with pytest.raises(ModelNotAvailableError, match="lllyasviel/control_v11p_sd15_canny"):
        load_controlnet(
            "lllyasviel/control_v11p_sd15_canny", unet=None, vae_scale_factor=8, dtype=torch.float32
        )


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_single_controlnet_follows_its_conditioning(model: str, workspace, subject, face_files):
    def draw(control: str) -> np.ndarray:
        engine = build_engine(GenerateConfig(model=model, controls=[control], **FAST), workspace)
        assert type(engine.pipe).__name__.endswith("ControlNetPipeline")
        return np.asarray(
            engine.run("a photo", "", [3], steps=2, guidance_scale=5.0, scheduler=None)[0], dtype=int
        )

    from_astronaut = draw(f"landmarks:{face_files['astronaut']}")
    from_pose = draw("landmarks:pose:three-quarter-right")
    assert np.abs(from_astronaut - from_pose).max() > 0  # the conditioning image steers the output


@pytest.mark.parametrize("model", ["tiny", "tiny-sdxl"])
def test_multi_controlnet_batch(model: str, workspace, subject, face_files):
    config = GenerateConfig(
        model=model, presets=["rembrandt"], count=3,
        controls=[f"landmarks:{face_files['grace_hopper']}:1.0:0:0.8", f"canny:{face_files['astronaut']}:0.5:0.2:1"],
        **FAST,
    )  # fmt: skip
    result = run_generate(subject, config, workspace=workspace)
    assert result.generated == 3
    controls = result.records[0].params["controls"]
    assert [c["type"] for c in controls] == ["landmarks", "canny"]
    assert [(c["scale"], c["start"], c["end"]) for c in controls] == [(1.0, 0.0, 0.8), (0.5, 0.2, 1.0)]
    assert all(c["controlnet"] == "tiny" and len(c["reference_sha256"]) == 64 for c in controls)


@pytest.fixture(scope="session")
def tiny_depth_estimator(tmp_path_factory: pytest.TempPathFactory):
    """A Depth Anything model with random weights (the real one is a download), saved as a local folder."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-depth")
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37, image_size=56,
        patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8, patch_size=14,
    )  # fmt: skip
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def test_depth_control_runs_when_an_estimator_is_present(
    workspace, subject, face_files, tiny_depth_estimator
):
    config = GenerateConfig(
        presets=["office"], count=1, controls=[f"depth:{face_files['grace_hopper']}:0.7"],
        depth_model=str(tiny_depth_estimator), **FAST,
    )  # fmt: skip
    result = run_generate(subject, config, workspace=workspace)
    assert result.records[0].params["controls"][0]["type"] == "depth"
